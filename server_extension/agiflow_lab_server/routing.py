"""Routes are declared once, with the metadata the OpenAPI document is built from.

A handler method decorated with ``@operation(...)`` says its summary, body, query and response
models; the route table says its path. ``openapi.py`` reads both, so the document cannot describe an
API other than the one being served.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:  # base.py is the handlers' module; routes only name the classes
    from agiflow_lab_server.base import AgiflowHandler

F = TypeVar("F", bound=Callable[..., Any])

API_PREFIX = "agiflow/api/v1"


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    tags: tuple[str, ...] = ()
    description: str = ""
    content_type: str = "application/json"
    # A body that is not one JSON model (CSV, protobuf...): media type → schema, as OpenAPI writes them.
    raw_body: dict[str, dict[str, Any]] = field(default_factory=dict)
    # More response media types than ``content_type``'s (OTLP answers in the request's encoding).
    raw_responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    websocket: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def operation(summary: str, **kwargs: Any) -> Callable[[F], F]:
    def mark(method: F) -> F:
        method.__agiflow_operation__ = Operation(summary, **kwargs)  # type: ignore[attr-defined]
        return method

    return mark


def path_regex(template: str) -> str:
    """``/projects/{project}`` → a tornado pattern with named groups."""
    return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "/?"


@dataclass(frozen=True)
class Route:
    template: str
    handler: type[AgiflowHandler]


def operations(handler: type) -> dict[str, Operation]:
    found = {}
    for verb in ("get", "post", "put", "patch", "delete"):
        method = getattr(handler, verb, None)
        op = getattr(method, "__agiflow_operation__", None)
        if op is not None:
            found[verb] = op
    return found
