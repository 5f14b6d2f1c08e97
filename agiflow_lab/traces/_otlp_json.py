"""OTLP/JSON (``application/json``): the protobuf messages in the proto3 JSON mapping, with OTLP's changes.

OTLP/JSON writes ids as hex and enums as integers and wants lowerCamelCase keys; senders built on
generic protobuf JSON encoders also write snake_case keys, enum names, base64 ids and int64 values as
either strings or numbers, and protobuf's own parser takes all of those, so this one does too. Unknown
keys are ignored, as the spec requires.

Problems inside one span (a wrong type, an unparsable number) reject that span only; problems in the
envelope (``resourceSpans`` not a list) fail the request, and so does any value nested deeper than
``MAX_DEPTH`` JSON levels, counted from the document root along the path walked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from agiflow_lab.traces._assemble import BatchSink, Origin, SpanProblem
from agiflow_lab.traces._proto import KINDS, STATUSES
from agiflow_lab.traces._values import MAX_DEPTH, as_int, clean_json_text, json_float, json_id, json_text
from agiflow_lab.traces.errors import OtlpError
from agiflow_lab.traces.records import Attributes, JsonValue, SpanEvent, SpanKind, SpanStatus

# Depths (JSON containers from the root, the root being 1) of the lists the walk starts from.
_RESOURCE_ATTRIBUTES_DEPTH = 5  # root, resourceSpans, its item, resource, attributes
_SPAN_ATTRIBUTES_DEPTH = 8  # ... scopeSpans, its item, spans, the span, attributes
_EVENT_ATTRIBUTES_DEPTH = 10  # ... events, the event, attributes

_KIND_NAMES: Mapping[str, SpanKind] = MappingProxyType({f"SPAN_KIND_{kind.upper()}": kind for kind in KINDS.values()})
_STATUS_NAMES: Mapping[str, SpanStatus] = MappingProxyType(
    {f"STATUS_CODE_{status.upper()}": status for status in STATUSES.values()}
)


def decode(doc: Any, sink: BatchSink) -> None:
    if not isinstance(doc, dict):
        raise OtlpError("the body is not a JSON object", "body")
    for i, resource_spans in enumerate(_list(doc, "resourceSpans", "resource_spans", "")):
        path = f"resourceSpans[{i}]"
        resource = _object(resource_spans, "resource", "resource", path)
        try:
            resource_attributes = attributes(resource.get("attributes"), _RESOURCE_ATTRIBUTES_DEPTH)
        except (TypeError, ValueError, KeyError) as e:
            raise OtlpError(f"malformed resource attributes: {e}", f"{path}.resource.attributes") from None
        for j, scope_spans in enumerate(_list(resource_spans, "scopeSpans", "scope_spans", path)):
            scope_path = f"{path}.scopeSpans[{j}]"
            scope = _object(scope_spans, "scope", "scope", scope_path)
            name = scope.get("name")
            origin = Origin.of(resource_attributes, clean_json_text(name) if isinstance(name, str) else None)
            for span in _list(scope_spans, "spans", "spans", scope_path):
                sink.add_read(origin, _span_fields, span)


def _span_fields(span: Any) -> dict[str, Any]:
    if not isinstance(span, dict):
        raise SpanProblem("malformed span (not an object)")
    trace_id = json_id(_get(span, "traceId", "trace_id"), 16)
    if trace_id is None:
        raise SpanProblem("invalid trace_id (not 32 hex digits, or all zeros)")
    span_id = json_id(_get(span, "spanId", "span_id"), 8)
    if span_id is None:
        raise SpanProblem("invalid span_id (not 16 hex digits, or all zeros)")
    parent = _get(span, "parentSpanId", "parent_span_id")
    parent_id = json_id(parent, 8) if parent else None
    if parent and parent_id is None:
        raise SpanProblem("invalid parent_span_id (not 16 hex digits)")
    status = span.get("status") or {}
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent_id,
        "name": json_text(span.get("name")),
        "kind": _enum(span.get("kind"), KINDS, _KIND_NAMES, "unspecified"),
        "start_ns": _time(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
        "end_ns": _time(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
        "status": _enum(status.get("code"), STATUSES, _STATUS_NAMES, "unset"),
        "status_message": json_text(status.get("message")),
        "attributes": attributes(span.get("attributes"), _SPAN_ATTRIBUTES_DEPTH),
        "events": [_event(event) for event in span.get("events") or ()],
    }


def _event(event: Any) -> SpanEvent:
    return {
        "name": json_text(event.get("name")),
        "time_ns": _time(_get(event, "timeUnixNano", "time_unix_nano")),
        "attributes": attributes(event.get("attributes"), _EVENT_ATTRIBUTES_DEPTH),
    }


def attributes(pairs: Any, depth: int) -> Attributes:
    """A KeyValue list (``depth`` is the list's own) as a flat dict; a repeated key keeps its last value."""
    if pairs is None:
        return {}
    if not isinstance(pairs, list):
        raise TypeError("attributes is not a list")
    out: Attributes = {}
    for pair in pairs:
        key = pair["key"]
        if not isinstance(key, str):
            raise TypeError("an attribute key is not a string")
        value = pair.get("value")
        out[clean_json_text(key)] = None if value is None else _value(value, depth + 2)
    return out


def _value(value: Any, depth: int) -> JsonValue:
    """An AnyValue object at ``depth``: its one known key says which kind it is."""
    if depth > MAX_DEPTH:
        raise OtlpError(f"attribute values nested deeper than {MAX_DEPTH} levels", "attributes")
    if not isinstance(value, dict):
        raise TypeError("an AnyValue is not an object")
    for key, inner in value.items():
        read = _ANY_VALUE.get(key)
        if read is not None:
            return read(inner, depth)
    return None


def _string(inner: Any, depth: int) -> JsonValue:
    if not isinstance(inner, str):
        raise TypeError("stringValue is not a string")
    return clean_json_text(inner)


def _int(inner: Any, depth: int) -> JsonValue:
    number = as_int(inner)
    if number is None:
        raise ValueError(f"intValue {inner!r} is not an integer")
    return number


def _double(inner: Any, depth: int) -> JsonValue:
    if isinstance(inner, bool):
        raise TypeError("doubleValue is a boolean")
    return json_float(float(inner))  # "NaN", "Infinity" and "-Infinity" are the mapping's spellings


def _bool(inner: Any, depth: int) -> JsonValue:
    if not isinstance(inner, bool):
        raise TypeError("boolValue is not a boolean")
    return inner


def _array(inner: Any, depth: int) -> JsonValue:
    values = (inner or {}).get("values") or []
    if not isinstance(values, list):
        raise TypeError("arrayValue.values is not a list")
    return [_value(item, depth + 3) for item in values]  # arrayValue, values, the item


def _kvlist(inner: Any, depth: int) -> JsonValue:
    return attributes((inner or {}).get("values"), depth + 2)  # kvlistValue, values


def _bytes(inner: Any, depth: int) -> JsonValue:
    return _string(inner, depth)  # base64 text, the same as protobuf bytes come out


_ANY_VALUE: Mapping[str, Callable[[Any, int], JsonValue]] = MappingProxyType(
    {
        "stringValue": _string,
        "string_value": _string,
        "intValue": _int,
        "int_value": _int,
        "doubleValue": _double,
        "double_value": _double,
        "boolValue": _bool,
        "bool_value": _bool,
        "arrayValue": _array,
        "array_value": _array,
        "kvlistValue": _kvlist,
        "kvlist_value": _kvlist,
        "bytesValue": _bytes,
        "bytes_value": _bytes,
    }
)


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _list(obj: Any, camel: str, snake: str, path: str) -> list[Any]:
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpError(f"{camel} is not a list", f"{path}.{camel}".lstrip("."))
    return value


def _object(obj: Any, camel: str, snake: str, path: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise OtlpError("not an object", path)
    value = _get(obj, camel, snake)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpError(f"{camel} is not an object", f"{path}.{camel}")
    return value


def _time(value: Any) -> int:
    if value is None:
        return 0
    number = as_int(value)
    if number is None:
        raise SpanProblem(f"invalid timestamp {str(value)[:40]!r}")
    return number


def _enum(value: Any, by_number: Mapping[int, Any], by_name: Mapping[str, Any], default: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return by_number.get(value, default)
    if isinstance(value, str):
        return by_name.get(value.upper(), default)
    return default
