"""Trace ingestion's pure layer: OTLP/protobuf, OTLP/JSON and agiflow-sdk bodies in, normalised span records out.

No server and no database: bodies are built with the real ``opentelemetry.proto`` classes or written by hand
to the OTLP/JSON mapping, and every rule (bounded decompression, per-span rejects, each convention's
attributes, prices) is checked on what ``decode_body`` returns.
"""

from __future__ import annotations

import base64
import gzip
import json
import tracemalloc
import zlib
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from agiflow_lab.providers.prices import Price, PriceBook
from agiflow_lab.traces.errors import OtlpError, OtlpTooLarge, OtlpUnsupportedMediaType
from agiflow_lab.traces.otlp import DecodedBatch, decode_body, encode_response
from agiflow_lab.traces.records import SpanRecord

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MB = 1_000_000
TRACE = bytes(range(1, 17))
T0 = 1_700_000_000_000_000_000


# ---------------------------------------------------------------- building requests


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(key_values(value))
        return out
    return AnyValue(string_value=value)


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def span(n: int = 1, *, attributes: dict[str, Any] | None = None, **fields: Any) -> Span:
    base: dict[str, Any] = {
        "trace_id": TRACE,
        "span_id": n.to_bytes(8, "big"),
        "name": f"span {n}",
        "kind": Span.SPAN_KIND_CLIENT,
        "start_time_unix_nano": T0 + n,
        "end_time_unix_nano": T0 + n + 1_000_000,
    }
    events = fields.pop("events", [])
    message = Span(**(base | fields))
    message.attributes.extend(key_values(attributes or {}))
    for name, event_attributes in events:
        message.events.add(name=name, time_unix_nano=T0 + 5, attributes=key_values(event_attributes))
    return message


def request(*spans: Span, service: str = "chatbot", scope: str = "openai.instrumentation") -> bytes:
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": service, "deployment.environment": "prod"}))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = scope
    scope_spans.spans.extend(spans)
    return bytes(message.SerializeToString())


def decode(body: bytes, content_type: str = PROTOBUF, encoding: str | None = None, **kwargs: Any) -> DecodedBatch:
    return decode_body(body, content_type, encoding, max_bytes=kwargs.pop("max_bytes", 5 * MB), **kwargs)


def one(attributes: dict[str, Any], **fields: Any) -> SpanRecord:
    batch = decode(request(span(attributes=attributes, **fields)))
    assert batch.rejected == []
    [record] = batch.spans
    return record


def otlp_json(spans: list[Any]) -> bytes:
    """An OTLP/JSON body as the spec writes it: lowerCamelCase, hex ids, enums as integers."""
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "chatbot"}}]},
                    "scopeSpans": [{"scope": {"name": "manual", "version": "1"}, "spans": spans}],
                }
            ]
        }
    ).encode()


def json_span(n: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "traceId": TRACE.hex(),
        "spanId": n.to_bytes(8, "big").hex(),
        "name": f"span {n}",
        "kind": 3,
        "startTimeUnixNano": str(T0 + n),
        "endTimeUnixNano": str(T0 + n + 1_000_000),
    } | fields


# ---------------------------------------------------------------- OTLP/protobuf


def test_a_protobuf_span_becomes_one_record_with_hex_ids_and_flat_attributes() -> None:
    parent = span(1)
    child = span(
        2,
        parent_span_id=(1).to_bytes(8, "big"),
        status=Status(code=Status.STATUS_CODE_ERROR, message="rate limited"),
        attributes={
            "http.status_code": 429,
            "ratio": 0.5,
            "streamed": False,
            "stop": ["\n", "END"],
            "request": {"n": 1, "nested": {"deep": "yes"}},
            "blob": b"\x00\x01",
            "nan": float("nan"),
        },
        events=[("retry", {"attempt": 2})],
    )
    batch = decode(request(parent, child))
    assert batch.dialect == "otlp-protobuf" and batch.rejected == []
    assert [s.span_id for s in batch.spans] == ["0000000000000001", "0000000000000002"]
    record = batch.spans[1]
    assert record.trace_id == TRACE.hex() and record.parent_span_id == "0000000000000001"
    assert batch.spans[0].parent_span_id is None
    assert (record.kind, record.status, record.status_message) == ("client", "error", "rate limited")
    assert (record.start_ns, record.end_ns) == (T0 + 2, T0 + 2 + 1_000_000)
    assert (record.service_name, record.scope_name) == ("chatbot", "openai.instrumentation")
    assert record.resource_attributes == {"service.name": "chatbot", "deployment.environment": "prod"}
    assert record.attributes == {
        "http.status_code": 429,
        "ratio": 0.5,
        "streamed": False,
        "stop": ["\n", "END"],
        "request": {"n": 1, "nested": {"deep": "yes"}},
        "blob": base64.b64encode(b"\x00\x01").decode(),
        "nan": "NaN",  # jsonb cannot hold NaN
    }
    assert record.events == [{"name": "retry", "time_ns": T0 + 5, "attributes": {"attempt": 2}}]
    assert record.span_type == "other" and record.cost_usd is None


def test_content_type_parameters_and_case_do_not_matter() -> None:
    batch = decode(request(span()), "Application/X-Protobuf; charset=binary")
    assert len(batch.spans) == 1


def test_malformed_protobuf_fails_the_whole_request_with_400() -> None:
    with pytest.raises(OtlpError) as caught:
        decode(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert caught.value.status == 400 and caught.value.field == "body"


def test_bad_ids_and_times_reject_only_their_span() -> None:
    spans = [
        span(1),
        span(2, trace_id=TRACE[:15]),
        span(3, trace_id=bytes(16)),
        span(4, span_id=b"\x01" * 7),
        span(5, parent_span_id=b"\x01" * 3),
        span(6, end_time_unix_nano=T0),
        span(7, name=""),
        span(8, start_time_unix_nano=0, end_time_unix_nano=0),
        span(9, end_time_unix_nano=2**64 - 1),
        span(10),
    ]
    batch = decode(request(*spans))
    assert [s.span_id for s in batch.spans] == ["0000000000000001", "000000000000000a"]
    assert [(r.index, r.reason.split(" (")[0]) for r in batch.rejected] == [
        (1, "invalid trace_id"),
        (2, "invalid trace_id"),
        (3, "invalid span_id"),
        (4, "invalid parent_span_id"),
        (5, "end before start"),
        (6, "missing name"),
        (7, "missing start time"),
        (8, "time out of range"),
    ]
    message = batch.partial_success_message()
    assert message.startswith("8 of 10 spans rejected: 2 × invalid trace_id")
    assert "1 × end before start" in message


def test_the_receivers_check_takes_and_rejects_exactly_what_the_writers_decoding_does() -> None:
    """The receiver answers from ``check_body`` (ids, name, times; no attributes) and the writer stores what
    ``decode_body`` takes: the two must agree span for span, or a 200 would count spans never stored."""
    import random

    from agiflow_lab.traces.otlp import check_body

    faults: list[dict[str, Any]] = [
        {}, {"trace_id": TRACE[:15]}, {"trace_id": bytes(16)}, {"trace_id": b""}, {"span_id": b"\x01" * 7},
        {"span_id": bytes(8)}, {"parent_span_id": b"\x01" * 3}, {"parent_span_id": bytes(8)},
        {"end_time_unix_nano": T0}, {"name": ""}, {"name": "\x00\x00"}, {"start_time_unix_nano": 0},
        {"end_time_unix_nano": 2**64 - 1}, {"start_time_unix_nano": 2**64 - 1, "end_time_unix_nano": 2**64 - 1},
        {"attributes": {"gen_ai.request.model": "gpt-4o", "x": [1, 2.5, None], "input.value": "\x00hi"}},
    ]  # fmt: skip
    rng = random.Random(11)
    for _ in range(200):
        message = ExportTraceServiceRequest()
        n = 0
        for _ in range(rng.randint(1, 3)):  # several resources and scopes: the index runs across all of them
            resource_spans = message.resource_spans.add()
            resource_spans.resource.attributes.extend(key_values({"service.name": "chatbot"}))
            for _ in range(rng.randint(1, 3)):
                scope_spans = resource_spans.scope_spans.add()
                for _ in range(rng.randint(0, 6)):
                    n += 1
                    fields = dict(rng.choice(faults)) if rng.random() < 0.5 else {}
                    scope_spans.spans.append(span(n, **fields))
        body = bytes(message.SerializeToString())
        decoded, checked = decode(body), check_body(body, PROTOBUF, None, max_bytes=5 * MB)
        assert checked.rejected == decoded.rejected
        assert [(s.trace_id, s.start_ns) for s in checked.spans] == [(s.trace_id, s.start_ns) for s in decoded.spans]
        assert checked.partial_success_message() == decoded.partial_success_message()

    gzipped = gzip.compress(request(span(1), span(2, name="")))  # the encoding is undone first, as for decoding
    assert len(check_body(gzipped, PROTOBUF, "gzip", max_bytes=5 * MB).spans) == 1
    for body, content_type in ((otlp_json([json_span(1), json_span(2, spanId="00")]), JSON), (sdk_body(), JSON)):
        decoded, checked = decode(body, content_type), check_body(body, content_type, None, max_bytes=5 * MB)
        assert checked.rejected == decoded.rejected and checked.dialect == decoded.dialect
        assert [(s.trace_id, s.start_ns) for s in checked.spans] == [(s.trace_id, s.start_ns) for s in decoded.spans]
    with pytest.raises(OtlpError) as caught:
        check_body(b"\x0a\xff\xff\xff\xff\x0f garbage", PROTOBUF, None, max_bytes=5 * MB)
    assert caught.value.status == 400 and caught.value.field == "body"


def test_nul_characters_are_stripped_from_names_keys_and_values() -> None:
    record = one({"gen_\x00ai.request.model": "gpt\x00-4o", "list": ["a\x00b"]}, name="chat\x00")
    assert record.name == "chat"
    assert record.attributes == {"gen_ai.request.model": "gpt-4o", "list": ["ab"]}
    assert record.model == "gpt-4o"


# ---------------------------------------------------------------- OTLP/JSON


def test_an_otlp_json_body_reads_the_same_as_its_protobuf_twin() -> None:
    attributes = {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10, "stop": ["a"], "t": 0.25}
    from_proto = decode(request(span(1, attributes=attributes), service="chatbot", scope="manual")).spans[0]
    body = otlp_json(
        [
            json_span(
                1,
                attributes=[
                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
                    {"key": "stop", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                    {"key": "t", "value": {"doubleValue": 0.25}},
                ],
            )
        ]
    )
    batch = decode(body, JSON)
    assert batch.dialect == "otlp-json"
    from_json = batch.spans[0]
    assert from_json.resource_attributes == {"service.name": "chatbot"}
    assert from_json == SpanRecord(**{**_fields(from_proto), "resource_attributes": from_json.resource_attributes})


def test_otlp_json_accepts_numbers_names_snake_case_kvlists_and_bytes() -> None:
    body = otlp_json(
        [
            {
                "trace_id": TRACE.hex().upper(),
                "span_id": "0000000000000001",
                "parent_span_id": "",
                "name": "s",
                "kind": "SPAN_KIND_SERVER",
                "start_time_unix_nano": T0,
                "end_time_unix_nano": T0 + 10,
                "status": {"code": "STATUS_CODE_OK"},
                "attributes": [
                    {"key": "n", "value": {"int_value": 7}},
                    {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": True}}]}}},
                    {"key": "b", "value": {"bytesValue": "AAE="}},
                    {"key": "empty", "value": {}},
                    {"key": "inf", "value": {"doubleValue": "Infinity"}},
                ],
                "events": [{"name": "e", "timeUnixNano": str(T0 + 1), "attributes": []}],
            }
        ]
    )
    [record] = decode(body, JSON).spans
    assert record.trace_id == TRACE.hex() and record.parent_span_id is None
    assert (record.kind, record.status, record.end_ns) == ("server", "ok", T0 + 10)
    assert record.attributes == {"n": 7, "kv": {"a": True}, "b": "AAE=", "empty": None, "inf": "Infinity"}
    assert record.events == [{"name": "e", "time_ns": T0 + 1, "attributes": {}}]


def test_protobufs_own_json_encoding_is_read_too() -> None:
    """json_format writes base64 ids and enum names; with preserving_proto_field_name, snake_case keys."""
    message = ExportTraceServiceRequest.FromString(request(span(1, attributes={"k": "v", "n": 3})))
    expected = decode(message.SerializeToString()).spans
    for snake in (False, True):
        body = json_format.MessageToJson(message, preserving_proto_field_name=snake).encode()
        assert decode(body, JSON).spans == expected


def test_a_malformed_json_span_is_rejected_and_the_others_kept() -> None:
    body = otlp_json(
        [
            json_span(1),
            json_span(2, attributes=[{"key": "n", "value": {"intValue": "twelve"}}]),
            json_span(3, traceId="zz" * 16),
            json_span(4, startTimeUnixNano="yesterday"),
            "not a span",
            json_span(6),
        ]
    )
    batch = decode(body, JSON)
    assert [s.span_id for s in batch.spans] == ["0000000000000001", "0000000000000006"]
    assert [r.index for r in batch.rejected] == [1, 2, 3, 4]
    assert "intValue 'twelve'" in batch.rejected[0].reason
    assert batch.rejected[1].reason.startswith("invalid trace_id")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]", b'{"resourceSpans": {"a": 1}}', b'"text"'],
)
def test_a_body_that_is_not_an_otlp_json_object_fails_with_400(body: bytes) -> None:
    with pytest.raises(OtlpError) as caught:
        decode(body, JSON)
    assert caught.value.status == 400


def test_json_nested_deeper_than_64_levels_is_refused() -> None:
    value: dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(25):  # 3 JSON levels per arrayValue
        value = {"arrayValue": {"values": [value]}}
    body = otlp_json([json_span(1, attributes=[{"key": "deep", "value": value}])])
    with pytest.raises(OtlpError, match="deeper than 64"):
        decode(body, JSON)
    with pytest.raises(OtlpError, match="nested too deeply"):
        decode(b"[" * 200_000 + b"]" * 200_000, JSON)


def test_nul_and_lone_surrogates_in_json_strings_are_made_storable() -> None:
    raw = otlp_json([json_span(1, name="a\u0000b", attributes=[{"key": "k", "value": {"stringValue": "x\ud800y"}}])])
    [record] = decode(raw, JSON).spans
    assert record.name == "ab"
    assert record.attributes == {"k": "x?y"}
    json.dumps(record.attributes).encode()  # encodable as UTF-8 now


# ---------------------------------------------------------------- agiflow-sdk 0.0.24


def sdk_body() -> bytes:
    """The shape TOOLCHAIN.md records from agiflow-sdk 0.0.24 posting to /v1/traces."""
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    completion = [{"role": "assistant", "content": "Hello!"}]
    return json.dumps(
        {
            "resource_spans": [
                {
                    "resource": {"attributes": {"service.name": "sdk-app", "telemetry.sdk.language": "python"}},
                    "scope_spans": [
                        {
                            "scope": {"name": "agiflow.opentelemetry.instrumentation.openai", "version": "0.0.24"},
                            "spans": [
                                {
                                    "name": "chat gpt-4o-mini",
                                    "context": {
                                        "trace_id": "0x" + TRACE.hex(),
                                        "span_id": "0x00000000000000aa",
                                        "trace_state": "[]",
                                    },
                                    "kind": "SpanKind.CLIENT",
                                    "parent_id": None,
                                    "start_time": "2024-06-01T12:00:00.000001Z",
                                    "end_time": "2024-06-01T12:00:01.500000Z",
                                    "status": {"status_code": "OK"},
                                    "attributes": {
                                        "agiflow.service.name": "OpenAI",
                                        "agiflow.service.type": "LLM",
                                        "gen_ai.system": "OpenAI",
                                        "gen_ai.operation.name": "Chat",
                                        "gen_ai.request.model": "gpt-4o-mini",
                                        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                                        "gen_ai.usage.input_tokens": 20,
                                        "gen_ai.usage.output_tokens": 5,
                                        "agiflow.association.properties.session_id": "s-1",
                                        "agiflow.association.properties.user_id": "u-1",
                                        "agiflow.prompt.key": "greeter",
                                        "agiflow.prompt.version": "3",
                                        "gen_ai.response.finish_reasons": ["stop"],
                                    },
                                    "events": [
                                        {
                                            "name": "gen_ai.content.prompt",
                                            "timestamp": "2024-06-01T12:00:00.000002Z",
                                            "attributes": {"gen_ai.prompt": json.dumps(prompt)},
                                        },
                                        {
                                            "name": "gen_ai.content.completion",
                                            "timestamp": "2024-06-01T12:00:01.400000Z",
                                            "attributes": {"gen_ai.completion": json.dumps(completion)},
                                        },
                                    ],
                                    "links": [],
                                    "resource": {"attributes": {"service.name": "sdk-app"}, "schema_url": ""},
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()


def test_an_agiflow_sdk_body_is_recognised_by_shape_and_normalised() -> None:
    batch = decode(sdk_body(), JSON)
    assert batch.dialect == "agiflow-sdk" and batch.rejected == []
    [record] = batch.spans
    assert record.trace_id == TRACE.hex() and record.span_id == "00000000000000aa"
    assert record.parent_span_id is None
    assert (record.kind, record.status) == ("client", "ok")
    assert record.start_ns == 1_717_243_200_000_001_000
    assert record.end_ns - record.start_ns == 1_499_999_000
    assert record.service_name == "sdk-app"
    assert record.scope_name == "agiflow.opentelemetry.instrumentation.openai"
    assert (record.span_type, record.provider) == ("chat", "openai")
    assert record.model == "gpt-4o-mini-2024-07-18"  # the response model: the snapshot that was billed
    assert (record.tokens_in, record.tokens_out) == (20, 5)
    assert record.cost_usd == pytest.approx((20 * 0.15 + 5 * 0.6) / MB)
    assert (record.session_id, record.user_id) == ("s-1", "u-1")
    assert (record.prompt_name, record.prompt_version) == ("greeter", 3)
    assert json.loads(record.input or "") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert record.output == "Hello!"  # one message: its text
    assert record.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert record.events[0]["time_ns"] == 1_717_243_200_000_002_000


def test_snake_case_otlp_json_without_context_is_not_mistaken_for_the_sdk() -> None:
    body = json.dumps({"resource_spans": [{"scope_spans": [{"spans": [json_span(1)]}]}]}).encode()
    batch = decode(body, JSON)
    assert batch.dialect == "otlp-json" and len(batch.spans) == 1


# ---------------------------------------------------------------- Content-Encoding and size


def test_gzip_deflate_and_raw_deflate_bodies_are_read() -> None:
    body = request(span(1), span(2))
    raw = zlib.compressobj(wbits=-15)
    raw_deflate = raw.compress(body) + raw.flush()
    for encoded, encoding in [
        (gzip.compress(body), "gzip"),
        (zlib.compress(body), "deflate"),
        (raw_deflate, "deflate"),
        (gzip.compress(body[:10]) + gzip.compress(body[10:]), "gzip"),  # two members
        (body, "identity"),
        (gzip.compress(gzip.compress(body)), "gzip, gzip"),
    ]:
        assert len(decode(encoded, encoding=encoding).spans) == 2, encoding


def test_a_zip_bomb_is_refused_as_too_large_without_inflating_it() -> None:
    bomb = gzip.compress(bytes(50 * MB), compresslevel=9)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(OtlpTooLarge) as caught:
            decode(bomb, encoding="gzip", max_bytes=4 * MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status == 413
    assert peak < 12 * MB  # at most the limit, never the 50 MB


def test_a_plain_body_over_the_limit_is_too_large() -> None:
    with pytest.raises(OtlpTooLarge):
        decode(request(span(1)), max_bytes=10)


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b"not gzip at all", "gzip"),
        (gzip.compress(b"x" * 1000)[:-12], "gzip"),
        (gzip.compress(b"{}") + b"junk", "gzip"),
    ],
)
def test_broken_compressed_bodies_fail_with_400(body: bytes, encoding: str) -> None:
    with pytest.raises(OtlpError) as caught:
        decode(body, JSON, encoding)
    assert caught.value.status == 400


@pytest.mark.parametrize(("content_type", "encoding"), [("text/plain", None), (None, None), (PROTOBUF, "br")])
def test_unknown_content_types_and_encodings_fail_with_415(content_type: str | None, encoding: str | None) -> None:
    with pytest.raises(OtlpUnsupportedMediaType) as caught:
        decode_body(request(span()), content_type, encoding, max_bytes=MB)
    assert caught.value.status == 415


# ---------------------------------------------------------------- conventions


def test_genai_semconv_attributes_and_message_events() -> None:
    record = one(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "ignored-when-provider-name-is-set",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.conversation.id": "conv-9",
        },
        events=[
            ("gen_ai.system.message", {"gen_ai.system": "openai", "content": "Be brief."}),
            ("gen_ai.user.message", {"content": "What is OTLP?"}),
            ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"content": "A protocol."}}),
        ],
    )
    assert (record.span_type, record.provider, record.model) == ("chat", "openai", "gpt-4o")
    assert (record.tokens_in, record.tokens_out, record.session_id) == (100, 20, "conv-9")
    assert json.loads(record.input or "") == [
        {"content": "Be brief.", "role": "system"},
        {"content": "What is OTLP?", "role": "user"},
    ]
    assert record.output == "A protocol."


def test_genai_structured_message_attributes_and_old_token_names() -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "Summarise this."}]}]
    record = one(
        {
            "gen_ai.operation.name": "text_completion",
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4",
            "gen_ai.usage.prompt_tokens": 7,
            "gen_ai.usage.completion_tokens": 3,
            "gen_ai.input.messages": json.dumps(messages),
            "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Done."}]}],
        }
    )
    assert (record.span_type, record.provider) == ("llm", "anthropic")
    assert (record.tokens_in, record.tokens_out) == (7, 3)
    assert (record.input, record.output) == ("Summarise this.", "Done.")


def test_genai_older_content_events() -> None:
    record = one(
        {"gen_ai.operation.name": "embeddings"},
        events=[
            ("gen_ai.content.prompt", {"gen_ai.prompt": "embed me"}),
            ("gen_ai.content.completion", {"gen_ai.completion": '[{"role": "assistant", "content": "ok"}]'}),
        ],
    )
    assert (record.span_type, record.input, record.output) == ("embedding", "embed me", "ok")


@pytest.mark.parametrize(
    ("operation", "span_type"),
    [("execute_tool", "tool"), ("invoke_agent", "agent"), ("embeddings", "embedding"), ("something_new", "other")],
)
def test_genai_operation_names_map_to_span_types(operation: str, span_type: str) -> None:
    assert one({"gen_ai.operation.name": operation}).span_type == span_type


def test_openinference_attributes() -> None:
    record = one(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.provider": "OpenAI",
            "llm.token_count.prompt": 12,
            "llm.token_count.completion": 4,
            "input.value": "raw input text",
            "output.value": '{"answer": 42}',
            "session.id": "sess",
            "user.id": "ann",
            "tag.tags": ["beta", "eu"],
            "llm.prompt_template.template": "Hello {name}",
            "llm.prompt_template.version": "v2",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "ignored: input.value ranks first",
        }
    )
    assert (record.span_type, record.model, record.provider) == ("llm", "gpt-4o-mini", "openai")
    assert (record.tokens_in, record.tokens_out) == (12, 4)
    assert (record.input, record.output) == ("raw input text", '{"answer": 42}')
    assert (record.session_id, record.user_id, record.tags) == ("sess", "ann", ("beta", "eu"))
    assert record.prompt_version == 2
    assert record.attributes["llm.prompt_template.template"] == "Hello {name}"


def test_openinference_indexed_messages_and_kinds() -> None:
    record = one(
        {
            "openinference.span.kind": "RETRIEVER",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "second",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "first",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "answer",
        }
    )
    assert record.span_type == "retriever"
    assert json.loads(record.input or "") == [
        {"role": "system", "content": "first"},
        {"role": "user", "content": "second"},
    ]
    assert record.output == "answer"


def test_traceloop_attributes() -> None:
    record = one(
        {
            "traceloop.span.kind": "workflow",
            "traceloop.entity.input": '{"args": ["hi"]}',
            "traceloop.entity.output": '"bye"',
            "traceloop.association.properties.session_id": "tl-s",
            "traceloop.association.properties.user_id": "tl-u",
            "llm.usage.prompt_tokens": 30,
            "llm.usage.completion_tokens": 6,
            "gen_ai.request.model": "gpt-4o",
        }
    )
    assert (record.span_type, record.input, record.output) == ("chain", '{"args": ["hi"]}', '"bye"')
    assert (record.session_id, record.user_id, record.tokens_in, record.tokens_out) == ("tl-s", "tl-u", 30, 6)
    assert record.cost_usd == pytest.approx((30 * 2.5 + 6 * 10) / MB)


def test_traceloop_indexed_prompts_and_request_type() -> None:
    record = one(
        {
            "llm.request.type": "chat",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "Tell me a joke",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "No.",
            "gen_ai.completion.0.finish_reason": "stop",
        }
    )
    assert record.span_type == "chat"
    assert record.input == "Tell me a joke"
    assert record.output == "No."


def test_agiflow_attributes_come_first() -> None:
    record = one(
        {
            "openinference.span.kind": "LLM",
            "agiflow.span.type": "Evaluator",
            "session.id": "from-openinference",
            "agiflow.session.id": "ours",
            "agiflow.user.id": "me",
            "agiflow.tags": "a, b,,c",
            "agiflow.prompt.name": "greeter",
            "agiflow.prompt.version": 4,
        }
    )
    assert (record.span_type, record.session_id, record.user_id) == ("evaluator", "ours", "me")
    assert record.tags == ("a", "b", "c")
    assert (record.prompt_name, record.prompt_version) == ("greeter", 4)


def test_unusable_values_fall_through_to_the_next_source() -> None:
    record = one(
        {
            "openinference.span.kind": "UNKNOWN",
            "traceloop.span.kind": "tool",
            "gen_ai.usage.input_tokens": "lots",
            "llm.token_count.prompt": "9",
            "agiflow.prompt.version": "0.0.1",
            "llm.prompt_template.version": "7",
        }
    )
    assert (record.span_type, record.tokens_in, record.prompt_version) == ("tool", 9, 7)


def test_a_span_without_a_type_is_llm_when_it_names_a_model_else_other() -> None:
    assert one({"gen_ai.request.model": "gpt-4o"}).span_type == "llm"
    assert one({"http.method": "GET"}).span_type == "other"


def test_exception_events_mark_the_span_failed_unless_its_status_said_ok() -> None:
    exception = ("exception", {"exception.type": "TimeoutError", "exception.message": "took too long"})
    failed = one({}, events=[exception])
    assert (failed.status, failed.status_message) == ("error", "TimeoutError: took too long")
    handled = one({}, events=[exception], status=Status(code=Status.STATUS_CODE_OK))
    assert (handled.status, handled.status_message) == ("ok", None)


def test_input_and_output_are_capped_at_one_megabyte() -> None:
    record = one({"input.value": "é" * 800_000, "output.value": "short"})
    assert record.input is not None and len(record.input.encode()) <= MB
    assert record.input.endswith("[truncated: 1600000 bytes in total]")
    assert record.output == "short"
    assert record.attributes["input.value"] == "é" * 800_000  # the raw attribute is kept whole


# ---------------------------------------------------------------- prices


def test_cost_is_priced_from_the_shipped_table_with_its_prefix_rule() -> None:
    priced = one(
        {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500}
    )
    assert priced.cost_usd == pytest.approx(1000 * 2.5 / MB + 500 * 10.0 / MB)
    dated = one(
        {
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 0,
        }
    )
    assert dated.cost_usd == pytest.approx(1000 * 2.5 / MB)


@pytest.mark.parametrize(
    "attributes",
    [
        {"gen_ai.request.model": "my-local-llama", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1},
        {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10},
        {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 1},
    ],
)
def test_unknown_models_and_missing_tokens_are_unpriced_not_free(attributes: dict[str, Any]) -> None:
    assert one(attributes).cost_usd is None


def test_a_projects_price_book_can_be_passed_in() -> None:
    book = PriceBook(overrides={"my-local-llama": Price(1.0, 2.0)})
    attributes = {"gen_ai.request.model": "my-local-llama", "gen_ai.usage.input_tokens": 1000}
    body = request(span(attributes=attributes | {"gen_ai.usage.output_tokens": 1000}))
    [record] = decode(body, price_lookup=book.lookup).spans
    assert record.cost_usd == pytest.approx(0.003)


# ---------------------------------------------------------------- responses


def test_the_protobuf_response_carries_partial_success_only_when_spans_were_rejected() -> None:
    assert encode_response(0, "", as_json=False) == b""
    response = ExportTraceServiceResponse.FromString(encode_response(2, "2 of 5 spans rejected", as_json=False))
    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message == "2 of 5 spans rejected"


def test_the_json_response_follows_the_proto3_json_mapping() -> None:
    assert json.loads(encode_response(0, "", as_json=True)) == {}
    body = json.loads(encode_response(3, "bad ids", as_json=True))
    assert body == {"partialSuccess": {"rejectedSpans": "3", "errorMessage": "bad ids"}}
    expected = ExportTraceServiceResponse()
    expected.partial_success.rejected_spans = 3
    expected.partial_success.error_message = "bad ids"
    assert body == json_format.MessageToDict(expected)


# ---------------------------------------------------------------- helpers


def _fields(record: SpanRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in SpanRecord._fields}
