"""Domain errors.

Services raise these; the server extension maps each to one HTTP status in a single place
(``agiflow_lab_server.base``), and the CLI maps them to exit codes. Keeping the mapping out of
the services means the same rule reads the same whether it is hit from REST, the SDK or the CLI.
"""

from __future__ import annotations

from typing import Any


class AgiflowError(Exception):
    """Base class: ``code`` is the stable machine-readable name clients switch on."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidInput(AgiflowError):
    """The request is well-formed but a value breaks a rule (names the field in details)."""

    status = 400
    code = "invalid_input"


class ValidationFailed(AgiflowError):
    """The body does not match the schema; details carry pydantic-style field paths."""

    status = 422
    code = "validation_failed"


class Unauthenticated(AgiflowError):
    status = 401
    code = "unauthenticated"


class Forbidden(AgiflowError):
    status = 403
    code = "forbidden"


class NotFound(AgiflowError):
    status = 404
    code = "not_found"


class Conflict(AgiflowError):
    status = 409
    code = "conflict"


class TooLarge(AgiflowError):
    """A body (or a field) beyond a configured limit; details name the limit and its setting."""

    status = 413
    code = "too_large"


class Unavailable(AgiflowError):
    """A dependency (database, broker) is down; the client may retry."""

    status = 503
    code = "unavailable"
