"""Errors the SDK raises: one ``ApiError`` per domain error class, so callers catch the domain name.

``except NotFound`` works the same whether the rule was broken in a service (in-process) or behind
the REST API (SDK); ``except ApiError`` catches every failure the SDK reports, including a server
that cannot be reached.
"""

from __future__ import annotations

from typing import Any

from agiflow_lab.errors import (
    HTTP_ERRORS,
    AgiflowError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    TooLarge,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)


class ApiError(AgiflowError):
    """The API answered with an error (or could not be reached); ``status`` and ``code`` are the server's."""

    def __init__(self, message: str, *, status: int, code: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.status = status
        self.code = code

    def __str__(self) -> str:
        return f"{self.message} ({self.status} {self.code})" if self.status else self.message

    @property
    def transient(self) -> bool:
        """A failure worth serving a cached copy through: a 5xx (and, below, an unreachable server)."""
        return self.status >= 500


class ApiInvalidInput(ApiError, InvalidInput):
    pass


class ApiValidationFailed(ApiError, ValidationFailed):
    pass


class ApiUnauthenticated(ApiError, Unauthenticated):
    pass


class ApiForbidden(ApiError, Forbidden):
    pass


class ApiNotFound(ApiError, NotFound):
    pass


class ApiConflict(ApiError, Conflict):
    pass


class ApiTooLarge(ApiError, TooLarge):
    pass


class ApiUnavailable(ApiError, Unavailable):
    pass


class ServerUnreachable(ApiUnavailable):
    """No HTTP answer at all: connection refused, DNS, timeout. ``status`` is 0."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=0, code="unreachable")

    @property
    def transient(self) -> bool:
        return True


_BY_CODE: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        ApiInvalidInput,
        ApiValidationFailed,
        ApiUnauthenticated,
        ApiForbidden,
        ApiNotFound,
        ApiConflict,
        ApiTooLarge,
        ApiUnavailable,
    )
}
# A body without our error shape (a proxy's page, a gateway timeout) is classified by its status: the
# server's own table, plus the gateway statuses a proxy in front of it answers when it is down.
_BY_STATUS: dict[int, type[ApiError]] = {
    **{status: _BY_CODE[cls.code] for status, cls in HTTP_ERRORS.items() if cls.code in _BY_CODE},
    502: ApiUnavailable,
    504: ApiUnavailable,
}


def error_for(status: int, body: Any) -> ApiError:
    """Build the right ``ApiError`` from a response's status and (maybe non-JSON) body."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
    else:
        code, message, details = "", "", {}
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, ApiError)
    fallback_code = cls.code if cls is not ApiError else f"http_{status}"
    return cls(message or f"HTTP {status}", status=status, code=code or fallback_code, details=details)
