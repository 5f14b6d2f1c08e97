"""The agiflow-sdk 0.0.24 body: OTLP's envelope in snake_case around OTel SDK ``ReadableSpan.to_json()`` spans.

That SDK posts ``application/json`` to ``/v1/traces`` but not OTLP/JSON: ids are ``0x``-prefixed hex under
``context``, times are ISO-8601 text, enums are Python reprs (``SpanKind.CLIENT``, ``OK``) and attributes
are a flat object. It is recognised by shape (``resource_spans`` whose spans have ``context``), since its
headers are the same as an OTLP/JSON sender's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, cast

from agiflow_lab.traces._assemble import BatchSink, Origin, SpanProblem
from agiflow_lab.traces._values import MAX_DEPTH, as_int, clean_json_text, json_float, json_id, json_text
from agiflow_lab.traces.errors import OtlpError
from agiflow_lab.traces.records import Attributes, JsonValue, SpanEvent, SpanKind, SpanStatus

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS: Mapping[str, SpanKind] = MappingProxyType(
    {"internal": "internal", "server": "server", "client": "client", "producer": "producer", "consumer": "consumer"}
)
_STATUSES: Mapping[str, SpanStatus] = MappingProxyType({"unset": "unset", "ok": "ok", "error": "error"})
# JSON containers from the root down to each flat attributes object (the root being 1).
_RESOURCE_ATTRIBUTES_DEPTH = 5  # root, resource_spans, its item, resource, attributes
_SPAN_ATTRIBUTES_DEPTH = 8  # ... scope_spans, its item, spans, the span, attributes
_EVENT_ATTRIBUTES_DEPTH = 10  # ... events, the event, attributes


def looks_like(doc: Any) -> bool:
    """True when the first span in the body is a ``ReadableSpan.to_json()`` (it has ``context``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resource_spans"), list):
        return False
    for resource_spans in doc["resource_spans"]:
        for scope_spans in _items(resource_spans, "scope_spans"):
            for span in _items(scope_spans, "spans"):
                return isinstance(span, dict) and "context" in span
    return False


def decode(doc: dict[str, Any], sink: BatchSink) -> None:
    for i, resource_spans in enumerate(doc["resource_spans"]):
        if not isinstance(resource_spans, dict):
            raise OtlpError("not an object", f"resource_spans[{i}]")
        resource = resource_spans.get("resource") or {}
        try:
            resource_attributes = flat(resource.get("attributes"), _RESOURCE_ATTRIBUTES_DEPTH)
        except (TypeError, AttributeError) as e:
            raise OtlpError(f"malformed resource attributes: {e}", f"resource_spans[{i}].resource") from None
        for scope_spans in _items(resource_spans, "scope_spans"):
            scope = (scope_spans.get("scope") or {}) if isinstance(scope_spans, dict) else {}
            name = scope.get("name") if isinstance(scope, dict) else None
            origin = Origin.of(resource_attributes, clean_json_text(name) if isinstance(name, str) else None)
            for span in _items(scope_spans, "spans"):
                sink.add_read(origin, _span_fields, span)


def _span_fields(span: Any) -> dict[str, Any]:
    context = span.get("context") or {}
    trace_id = json_id(context.get("trace_id"), 16)
    if trace_id is None:
        raise SpanProblem("invalid trace_id (not 32 hex digits, or all zeros)")
    span_id = json_id(context.get("span_id"), 8)
    if span_id is None:
        raise SpanProblem("invalid span_id (not 16 hex digits, or all zeros)")
    parent = span.get("parent_id")
    parent_id = json_id(parent, 8) if parent else None
    if parent and parent_id is None:
        raise SpanProblem("invalid parent_span_id (not 16 hex digits)")
    status = span.get("status") or {}
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_id,
        "name": json_text(span.get("name")),
        "kind": _KINDS.get(_enum_name(span.get("kind")), "unspecified"),
        "start_ns": _time(span.get("start_time")),
        "end_ns": _time(span.get("end_time")),
        "status": _STATUSES.get(_enum_name(status.get("status_code")), "unset"),
        "status_message": json_text(status.get("description")),
        "attributes": flat(span.get("attributes"), _SPAN_ATTRIBUTES_DEPTH),
        "events": [_event(event) for event in span.get("events") or ()],
    }


def _event(event: Any) -> SpanEvent:
    return {
        "name": json_text(event.get("name")),
        "time_ns": _time(event.get("timestamp")),
        "attributes": flat(event.get("attributes"), _EVENT_ATTRIBUTES_DEPTH),
    }


def flat(attributes: Any, depth: int) -> Attributes:
    """A flat attributes object (``depth`` is its own): keys and text cleaned, numbers JSON-safe."""
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise TypeError("attributes is not an object")
    return {clean_json_text(key): _plain(value, depth + 1) for key, value in attributes.items()}


def _plain(value: Any, depth: int) -> JsonValue:
    if isinstance(value, str):
        return clean_json_text(value)
    if isinstance(value, float):
        return json_float(value)
    if value is None or isinstance(value, bool | int):
        return cast(JsonValue, value)
    if depth > MAX_DEPTH:
        raise OtlpError(f"attribute values nested deeper than {MAX_DEPTH} levels", "attributes")
    if isinstance(value, list):
        return [_plain(item, depth + 1) for item in value]
    return flat(value, depth)


def _items(obj: Any, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _enum_name(value: Any) -> str:
    """``SpanKind.CLIENT`` → ``client``, ``StatusCode.OK`` or ``OK`` → ``ok``."""
    return value.rpartition(".")[2].lower() if isinstance(value, str) else ""


def _time(value: Any) -> int:
    """ISO-8601 text (``ReadableSpan.to_json`` writes microseconds and ``Z``) as unix nanoseconds."""
    if value is None:
        return 0
    if not isinstance(value, str):
        number = as_int(value)
        if number is None:
            raise SpanProblem(f"invalid timestamp {str(value)[:40]!r}")
        return number
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SpanProblem(f"invalid timestamp {value[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
