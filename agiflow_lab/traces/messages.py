"""What travels on the ``spans`` topic between a receiver and the span writers.

A receiver decodes each export request once to validate it (and to answer ``partial_success``), then
publishes the request itself, compressed, rather than its decoded rows: the body is 5-10 times smaller
than the rows as JSON, stays under Kafka's default 1 MB message limit for the 2 MiB bodies a receiver
accepts, and decoding again in the writer costs ~20 µs a span, against ~50 µs to store it. Decoding is
deterministic, so the writer rejects exactly the spans the receiver reported as rejected.
"""

from __future__ import annotations

import zlib
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

SPAN_WRITERS = "span-writers"  # the consumer group of every span writer


class SpanBatch(BaseModel):
    """One accepted export request for one project; the message key is its first trace id."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")  # bytes as base64 in JSON
    project_id: int
    content_type: str = Field(description="the request's media type: application/x-protobuf or application/json")
    body: bytes = Field(description="the request body, decompressed by the receiver, then zlib-compressed")
    received_at: datetime
    spans: int = Field(ge=0, description="spans the receiver accepted from it (for metrics and checks)")

    @classmethod
    def of(cls, project_id: int, content_type: str, data: bytes, received_at: datetime, spans: int) -> SpanBatch:
        return cls(project_id=project_id, content_type=content_type, body=zlib.compress(data, 1),
                   received_at=received_at, spans=spans)  # fmt: skip

    # The writer decodes ``body`` with ``otlp.decode_body(body, content_type, CONTENT_ENCODING, ...)``.


CONTENT_ENCODING = "deflate"  # how ``SpanBatch.body`` is compressed, as an HTTP Content-Encoding
