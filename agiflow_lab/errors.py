"""Domain errors, and the one table of HTTP statuses and error codes.

Services raise these; the server extension maps each to one HTTP status in a single place
(``agiflow_lab_server.base``), and the CLI maps them to exit codes. Keeping the mapping out of
the services means the same rule reads the same whether it is hit from REST, the SDK or the CLI.

Each class names its status, its ``code`` and what the status means (``summary``). ``HTTP_ERRORS``
collects them by status: the server's error bodies, the OpenAPI document's responses and the SDK's
exception classes all read it, so a status keeps one code wherever it is answered or parsed.
"""

from __future__ import annotations

from http.client import responses
from typing import Any, ClassVar

from pydantic import ValidationError


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

    @classmethod
    def of(cls, field: str, message: str, kind: str = "value_error") -> ValidationFailed:
        """A rule the schema cannot say (across fields, or against stored state), in the shape pydantic's own
        errors take, so a client reads every 422 the same way."""
        return cls(f"{field}: {message}", {"field": field, "errors": [{"field": field, "message": message,
                                                                       "type": kind}]})  # fmt: skip


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


def error_body(status: int, exc: BaseException | None) -> tuple[int, dict[str, Any]]:
    """The status and JSON body an exception becomes, for every HTTP surface (the REST API, the job API).

    A domain error speaks for itself; a schema mismatch names its first field; an HTTP error from the web
    framework keeps its message (``log_message``); any other error is a 500 that says nothing of its cause."""
    code, message, details = code_for(status), responses.get(status, ""), {}
    if isinstance(exc, AgiflowError):
        status, code, message, details = exc.status, exc.code, exc.message, exc.details
    elif isinstance(exc, ValidationError):
        status, code, details = ValidationFailed.status, ValidationFailed.code, validation_details(exc)
        first = details["errors"][0]
        message = f"{first['field']}: {first['message']}"
    elif (log_message := getattr(exc, "log_message", None)) is not None:
        message = str(log_message) or message
    elif status >= 500:
        message = "internal error; the server log has the details"
    return status, {"error": {"code": code, "message": message, "details": details}}


def validation_details(exc: ValidationError) -> dict[str, Any]:
    return {
        "errors": [
            {"field": ".".join(str(part) for part in e["loc"]) or "body", "message": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
    }
