"""Domain errors, and the one table of HTTP statuses and error codes.

Services raise these; the server extension maps each to one HTTP status in a single place
(``agiflow_lab_server.base``), and the CLI maps them to exit codes. Keeping the mapping out of
the services means the same rule reads the same whether it is hit from REST, the SDK or the CLI.

Each class names its status, its ``code`` and what the status means (``summary``). ``HTTP_ERRORS``
collects them by status: the server's error bodies, the OpenAPI document's responses and the SDK's
exception classes all read it, so a status keeps one code wherever it is answered or parsed.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AgiflowError(Exception):
    """Base class: ``code`` is the stable machine-readable name clients switch on."""

    status = 500
    code = "internal_error"
    summary: ClassVar[str] = "Internal error; the server log has the details"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidInput(AgiflowError):
    """The request is well-formed but a value breaks a rule (names the field in details)."""

    status = 400
    code = "invalid_input"
    summary = "Invalid input (details name the field)"


class ValidationFailed(AgiflowError):
    """The body does not match the schema; details carry pydantic-style field paths."""

    status = 422
    code = "validation_failed"
    summary = "Body or query does not match the schema (details list field paths)"


class Unauthenticated(AgiflowError):
    status = 401
    code = "unauthenticated"
    summary = "Not authenticated"


class Forbidden(AgiflowError):
    status = 403
    code = "forbidden"
    summary = "Not allowed for the caller's role"


class NotFound(AgiflowError):
    status = 404
    code = "not_found"
    summary = "Not found"


class Conflict(AgiflowError):
    status = 409
    code = "conflict"
    summary = "Conflict with the current state"


class TooLarge(AgiflowError):
    """A body (or a field) beyond a configured limit; details name the limit and its setting."""

    status = 413
    code = "too_large"
    summary = "Body larger than the endpoint's limit (details name the limit and its setting)"


class Unavailable(AgiflowError):
    """A dependency (database, broker) is down; the client may retry."""

    status = 503
    code = "unavailable"
    summary = "A dependency (database, broker) is down; the client may retry"


class MethodNotAllowed(AgiflowError):
    """Raised by tornado itself for a verb a route does not serve; named so the status has one code."""

    status = 405
    code = "method_not_allowed"
    summary = "Method not allowed on this path"


class UnsupportedMediaType(AgiflowError):
    status = 415
    code = "unsupported_media_type"
    summary = "The body's content type is not one this endpoint reads"


HTTP_ERRORS: dict[int, type[AgiflowError]] = {
    cls.status: cls
    for cls in (
        InvalidInput,
        Unauthenticated,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        TooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        Unavailable,
    )
}


def code_for(status: int) -> str:
    """The error code of an HTTP status that no domain error named (tornado's own 404, 405, ...)."""
    return HTTP_ERRORS[status].code if status in HTTP_ERRORS else AgiflowError.code
