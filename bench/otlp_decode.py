"""Trace decoding throughput: spans/s through ``decode_body`` for OTLP/protobuf batches, and what it costs.

    python bench/otlp_decode.py [--batches 200] [--spans 512]

Each batch is one ``ExportTraceServiceRequest`` of ``--spans`` GenAI-style spans with 9 attributes (operation,
provider, request and response model, input and output tokens, temperature, session id and a one-message
``gen_ai.input.messages``), as the OpenTelemetry SDK's HTTP exporter would send it. One process, one thread;
every figure is the whole run's spans divided by its wall time after one warm-up batch:

(a) parse only: ``ExportTraceServiceRequest.ParseFromString`` (the upb floor);
(b) decode + normalise: ``decode_body`` on the protobuf body (records with columns, prices and flat attributes);
(c) the same, gzip-encoded (as the SDK exporter sends with ``OTEL_EXPORTER_OTLP_COMPRESSION=gzip``);
(d) the same spans as OTLP/JSON.
Prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agiflow_lab.traces.otlp import decode_body  # noqa: E402

MAX_BYTES = 64 * 1024 * 1024


def batch(n_spans: int, seed: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="bench"))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "opentelemetry.instrumentation.openai"
    start = 1_700_000_000_000_000_000 + seed * 10_000_000_000
    for i in range(n_spans):
        span = scope_spans.spans.add(
            trace_id=(seed * 100_000 + i // 8 + 1).to_bytes(16, "big"),
            span_id=(seed * 100_000 + i + 1).to_bytes(8, "big"),
            name="chat gpt-4o-mini",
            kind=3,
            start_time_unix_nano=start + i * 1_000_000,
            end_time_unix_nano=start + i * 1_000_000 + 850_000_000,
        )
        span.status.code = 1
        span.attributes.extend(_attributes(i))
    return request


def _attributes(i: int) -> list[KeyValue]:
    message = json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"Question number {i}?"}]}])
    values: dict[str, AnyValue] = {
        "gen_ai.operation.name": AnyValue(string_value="chat"),
        "gen_ai.system": AnyValue(string_value="openai"),
        "gen_ai.request.model": AnyValue(string_value="gpt-4o-mini"),
        "gen_ai.response.model": AnyValue(string_value="gpt-4o-mini-2024-07-18"),
        "gen_ai.usage.input_tokens": AnyValue(int_value=120 + i % 50),
        "gen_ai.usage.output_tokens": AnyValue(int_value=30 + i % 20),
        "gen_ai.request.temperature": AnyValue(double_value=0.2),
        "session.id": AnyValue(string_value=f"session-{i % 32}"),
        "gen_ai.input.messages": AnyValue(string_value=message),
    }
    return [KeyValue(key=k, value=v) for k, v in values.items()]


def rate(label: str, bodies: list[bytes], n_spans: int, run: Callable[[bytes], object]) -> None:
    run(bodies[0])  # warm-up: imports, price table, first allocations
    started = time.perf_counter()
    for body in bodies:
        run(body)
    elapsed = time.perf_counter() - started
    spans = len(bodies) * n_spans
    megabytes = sum(map(len, bodies)) / 1e6
    print(
        f"{label:<32} {spans / elapsed:>10,.0f} spans/s  {elapsed / len(bodies) * 1000:7.2f} ms/batch"
        f"  {megabytes / elapsed:7.1f} MB/s of body"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--spans", type=int, default=512)
    args = parser.parse_args()

    requests = [batch(args.spans, seed) for seed in range(args.batches)]
    protobuf = [r.SerializeToString() for r in requests]
    gzipped = [gzip.compress(body, compresslevel=6) for body in protobuf]
    as_json = [json_format.MessageToJson(r, indent=None).encode() for r in requests]
    print(
        f"{args.batches} batches x {args.spans} spans, 9 attributes each;"
        f" protobuf {len(protobuf[0]) / 1024:.0f} KB/batch, gzip {len(gzipped[0]) / 1024:.0f} KB,"
        f" JSON {len(as_json[0]) / 1024:.0f} KB"
    )
    rate("(a) ParseFromString only", protobuf, args.spans, ExportTraceServiceRequest.FromString)
    rate("(b) decode + normalise, protobuf", protobuf, args.spans, _decoder("application/x-protobuf", None))
    rate("(c) ... gzip", gzipped, args.spans, _decoder("application/x-protobuf", "gzip"))
    rate("(d) ... OTLP/JSON", as_json, args.spans, _decoder("application/json", None))


def _decoder(content_type: str, encoding: str | None) -> Callable[[bytes], object]:
    def run(body: bytes) -> object:
        return decode_body(body, content_type, encoding, max_bytes=MAX_BYTES)

    return run


if __name__ == "__main__":
    main()
