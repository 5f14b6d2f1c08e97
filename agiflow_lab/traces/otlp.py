"""An OTLP/HTTP trace export request → normalised span records, and the response that answers it.

Pure: bytes and headers in, records out, no I/O, so the receiver stays a few lines and every rule here
is tested without a server. A body that cannot be read at all raises an ``OtlpError`` (the receiver
answers 400, 413 or 415 from its ``status``); a span that cannot be taken is a ``Rejected`` and the rest
of its batch is still taken, which the receiver reports as OTLP ``partial_success``.

Three bodies are read: OTLP/protobuf, OTLP/JSON, and the agiflow-sdk 0.0.24 dialect (``application/json``
too, told apart by its shape).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from agiflow_lab.traces import _otlp_json, _proto, _sdk_dialect
from agiflow_lab.traces._assemble import BatchSink, HeadSink
from agiflow_lab.traces._inflate import decode_content
from agiflow_lab.traces.errors import OtlpError, OtlpTooLarge, OtlpUnsupportedMediaType
from agiflow_lab.traces.records import Rejected, SpanHead, SpanRecord
from agiflow_lab.traces.semconv import PriceLookup, Pricer

__all__ = [
    "CheckedBatch",
    "DecodedBatch",
    "OtlpError",
    "OtlpTooLarge",
    "OtlpUnsupportedMediaType",
    "check_body",
    "decode_body",
    "encode_response",
]

Dialect = Literal["otlp-protobuf", "otlp-json", "agiflow-sdk"]
PROTOBUF = frozenset({"application/x-protobuf", "application/protobuf"})
JSON = frozenset({"application/json"})
_MESSAGE_REASONS = 5  # distinct reasons named in a partial-success message; the rest are counted


S = TypeVar("S", SpanRecord, SpanHead)


@dataclass(slots=True)
class Batch(Generic[S]):
    spans: list[S]
    rejected: list[Rejected]
    dialect: Dialect

    def partial_success_message(self) -> str:
        """Why spans were refused, most frequent reason first; empty when none were."""
        if not self.rejected:
            return ""
        counts = Counter(r.reason for r in self.rejected).most_common()
        named = "; ".join(f"{n} × {reason}" for reason, n in counts[:_MESSAGE_REASONS])
        more = f"; {len(counts) - _MESSAGE_REASONS} more reasons" if len(counts) > _MESSAGE_REASONS else ""
        total = len(self.spans) + len(self.rejected)
        return f"{len(self.rejected)} of {total} spans rejected: {named}{more}"


DecodedBatch = Batch[SpanRecord]  # what the span writer stores
CheckedBatch = Batch[SpanHead]  # what the receiver needs to answer and publish


def decode_body(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    *,
    max_bytes: int,
    price_lookup: PriceLookup | None = None,
) -> DecodedBatch:
    """Decode one export request. ``max_bytes`` bounds the body after decompression; ``price_lookup``
    (``PriceBook.lookup``) prices spans, the shipped price table when not given."""
    media = media_type(content_type)
    data = decode_content(body, content_encoding, max_bytes)
    sink = BatchSink(Pricer(price_lookup))
    dialect: Dialect
    if media in PROTOBUF:
        _proto.decode(data, sink)
        dialect = "otlp-protobuf"
    else:
        doc = _parse_json(data)
        if _sdk_dialect.looks_like(doc):
            _sdk_dialect.decode(doc, sink)
            dialect = "agiflow-sdk"
        else:
            _otlp_json.decode(doc, sink)
            dialect = "otlp-json"
    return DecodedBatch(sink.spans, sink.rejected, dialect)


def check_body(body: bytes, content_type: str | None, content_encoding: str | None, *, max_bytes: int) -> CheckedBatch:
    """What ``decode_body`` would take and reject, for the receiver (the writer decodes the batch again).
    Protobuf is only checked: ids, name and times. JSON is decoded: it must be parsed whole anyway, and its
    two dialects are told apart by their shape."""
    media = media_type(content_type)
    data = decode_content(body, content_encoding, max_bytes)
    if media in PROTOBUF:
        sink = HeadSink()
        _proto.check(data, sink)
        return CheckedBatch(sink.spans, sink.rejected, "otlp-protobuf")
    decoded = decode_body(data, content_type, None, max_bytes=max_bytes)
    return CheckedBatch([SpanHead(s.trace_id, s.start_ns) for s in decoded.spans], decoded.rejected, decoded.dialect)


def encode_response(rejected: int, message: str, as_json: bool) -> bytes:
    """An ``ExportTraceServiceResponse``, in the request's encoding.

    ``partial_success`` is left out when nothing was rejected and there is nothing to say (the spec:
    a full success leaves it unset). In JSON, ``rejectedSpans`` is an int64 and so a string."""
    if as_json:
        partial: dict[str, str] = {}
        if rejected:
            partial["rejectedSpans"] = str(rejected)
        if message:
            partial["errorMessage"] = message
        return json.dumps({"partialSuccess": partial} if partial else {}).encode()
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return bytes(response.SerializeToString())


def media_type(content_type: str | None) -> str:
    """The request's media type without parameters, lowercased; 415 if it is not one this receiver reads."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media not in PROTOBUF and media not in JSON:
        shown = content_type or "none"
        raise OtlpUnsupportedMediaType(
            f"Content-Type {shown!r} is not application/x-protobuf or application/json", "Content-Type"
        )
    return media


def _parse_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise OtlpError("JSON nested too deeply", "body") from None
    except ValueError as e:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8/16/32
        raise OtlpError(f"malformed JSON: {e}", "body") from None
