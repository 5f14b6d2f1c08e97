"""OTLP/protobuf (``application/x-protobuf``): what the OpenTelemetry SDKs' HTTP exporters send.

One ``ParseFromString`` on the upb backend does the parsing in C; what is left in Python is a single
walk over each span's fields and attributes. Nesting is bounded by upb itself (it refuses messages
nested deeper than its recursion limit), and proto3 strings arrive as checked UTF-8, so only NUL
characters need removing here.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agiflow_lab.traces._assemble import BatchSink, HeadSink, Origin
from agiflow_lab.traces._values import bytes_id, clean, json_float
from agiflow_lab.traces.errors import OtlpError
from agiflow_lab.traces.records import Attributes, JsonValue, SpanEvent, SpanKind, SpanStatus

KINDS: Mapping[int, SpanKind] = MappingProxyType(
    {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
)
STATUSES: Mapping[int, SpanStatus] = MappingProxyType({0: "unset", 1: "ok", 2: "error"})


def decode(body: bytes, sink: BatchSink) -> None:
    request = _parse(body)
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            origin = Origin.of(resource, clean(scope_spans.scope.name))
            for span in scope_spans.spans:
                _span(span, origin, sink)


def check(body: bytes, sink: HeadSink) -> None:
    """Take and reject what ``decode`` would, reading only ids, name and times: the receiver's pass. It
    was a twelfth of the cost of decoding (attributes, conventions, prices), which the span writer does."""
    request = _parse(body)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                ids = _ids(span)
                if isinstance(ids, str):
                    sink.reject(ids)
                else:
                    sink.add_head(ids[0], clean(span.name), span.start_time_unix_nano, span.end_time_unix_nano)


def _parse(body: bytes) -> Any:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as e:
        raise OtlpError(f"malformed protobuf: {e}", "body") from None
    return request


def _ids(span: Any) -> tuple[str, str, str | None] | str:
    """The span's trace, span and parent ids as hex, or why they cannot be taken."""
    trace_id = bytes_id(span.trace_id, 16)
    span_id = bytes_id(span.span_id, 8)
    parent = span.parent_span_id
    parent_id = bytes_id(parent, 8) if parent else None
    if trace_id is None or span_id is None or (parent and parent_id is None):
        return _id_problem(trace_id, span_id)
    return trace_id, span_id, parent_id


def _span(span: Any, origin: Origin, sink: BatchSink) -> None:
    ids = _ids(span)
    if isinstance(ids, str):
        sink.reject(ids)
        return
    trace_id, span_id, parent_id = ids
    status = span.status
    sink.add(
        origin,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_id,
        name=clean(span.name),
        kind=KINDS.get(span.kind, "unspecified"),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status=STATUSES.get(status.code, "unset"),
        status_message=clean(status.message),
        attributes=attributes(span.attributes),
        events=[_event(event) for event in span.events],
    )


def _id_problem(trace_id: str | None, span_id: str | None) -> str:
    if trace_id is None:
        return "invalid trace_id (not 16 bytes, or all zeros)"
    if span_id is None:
        return "invalid span_id (not 8 bytes, or all zeros)"
    return "invalid parent_span_id (not 8 bytes)"


def _event(event: Any) -> SpanEvent:
    return {"name": clean(event.name), "time_ns": event.time_unix_nano, "attributes": attributes(event.attributes)}


def attributes(pairs: Any) -> Attributes:
    """A repeated KeyValue as a flat dict (a repeated key keeps its last value).

    Most values are text, and reading ``string_value`` (empty unless set) costs less than asking which
    field is set, so text takes that shortcut and everything else goes through ``_value``."""
    out: Attributes = {}
    for pair in pairs:
        key = pair.key
        if "\x00" in key:
            key = key.replace("\x00", "")
        value = pair.value
        text: str = value.string_value
        if text:
            out[key] = text.replace("\x00", "") if "\x00" in text else text
        else:
            out[key] = _value(value)
    return out


def _value(value: Any) -> JsonValue:
    """An AnyValue as plain JSON: bytes become base64 text, an unset value None."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text: str = value.string_value
        return text.replace("\x00", "") if "\x00" in text else text
    if kind == "int_value":
        return value.int_value  # type: ignore[no-any-return]
    if kind == "double_value":
        return json_float(value.double_value)
    if kind == "bool_value":
        return value.bool_value  # type: ignore[no-any-return]
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None  # unset, or a profiles-only string-table index
