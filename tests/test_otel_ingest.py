"""The OTLP/HTTP trace receiver against the real server: a real OpenTelemetry SDK exports to it, and what it
accepts is on the ``spans`` topic of the server's Postgres bus (the span writer's input) as one batch."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.bus.base import Outgoing
from agiflow_lab.bus.postgres import PostgresBus
from agiflow_lab.bus.topics import SPANS
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import Unavailable
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.traces.ingest import IngestUnavailable, TraceIngest
from agiflow_lab.traces.messages import SpanBatch
from agiflow_lab.traces.otlp import decode_body
from tests.support.api import Api

TRACES = "/otel/v1/traces"
MiB = 1024 * 1024


def finished_spans(n: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test-otel-ingest")
    with tracer.start_as_current_span("root"):
        for i in range(n - 1):
            with tracer.start_as_current_span(f"child {i}") as span:
                span.set_attribute("gen_ai.request.model", "gpt-4o")
    return list(memory.get_finished_spans())


def span_json(span_id: str, start_ns: int | None = None) -> dict[str, Any]:
    start = start_ns or time.time_ns()
    return {"traceId": uuid.uuid4().hex, "spanId": span_id, "name": "call", "kind": 3,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1000)}  # fmt: skip


def request_json(*spans: dict[str, Any]) -> bytes:
    doc = {
        "resourceSpans": [
            {"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}]}
        ]
    }
    return json.dumps(doc).encode()


async def post(api: Api, body: bytes, content_type: str = "application/json", **who: Any) -> httpx.Response:
    headers = {**api.headers(**{k: v for k, v in who.items() if k in ("key", "user", "anonymous")})}
    headers["Content-Type"] = content_type
    headers.update(who.get("headers", {}))
    # A client of its own: the shared one may hold a Jupyter cookie from an earlier test (then XSRF, not 401).
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(api.server.api + TRACES, content=body, headers=headers)


async def batches(db_url: str, project: str) -> list[tuple[str, SpanBatch]]:
    """The span batches published for ``project``, oldest first, with their message keys."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT m.key, m.payload FROM control.bus_messages m JOIN control.projects p"
            " ON p.id = (m.payload->>'project_id')::bigint WHERE m.topic = %s AND p.slug = %s ORDER BY m.seq",
            (SPANS, project),
        )
        return [(key, SpanBatch.model_validate(payload)) for key, payload in await cur.fetchall()]


def error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = r.json()["error"]
    assert body["code"] == code, body
    return body


async def test_the_opentelemetry_sdk_exports_to_it_and_the_batch_is_on_the_spans_topic(
    api: Api, project: str, db_url: str
) -> None:
    key = await api.new_key(project, "editor")
    spans = finished_spans(3)
    exporter = OTLPSpanExporter(endpoint=api.server.api + TRACES, headers={"Authorization": f"Bearer {key}"})
    assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.SUCCESS
    exporter.shutdown()

    [(message_key, batch)] = await batches(db_url, project)
    assert batch.spans == 3 and batch.content_type == "application/x-protobuf"
    assert message_key == format(spans[0].context.trace_id, "032x")
    decoded = decode_body(batch.request_body(10 * MiB), batch.content_type, None, max_bytes=10 * MiB)
    assert sorted(s.name for s in decoded.spans) == ["child 0", "child 1", "root"]
    assert not decoded.rejected


async def test_a_bad_span_id_rejects_that_span_only(api: Api, project: str, db_url: str) -> None:
    key = await api.new_key(project, "editor")
    r = await post(api, request_json(span_json("00f067aa0ba902b7"), span_json("zz")), key=key)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "span_id" in partial["errorMessage"]
    [(_, batch)] = await batches(db_url, project)
    assert batch.spans == 1


async def test_spans_outside_the_stored_days_are_rejected_saying_why(api: Api, project: str, db_url: str) -> None:
    key = await api.new_key(project, "editor")
    old = time.time_ns() - 200 * 86400 * 10**9
    r = await post(api, request_json(span_json("00f067aa0ba902b7", old)), key=key)
    assert r.status_code == 200, r.text
    partial = r.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "outside the days" in partial["errorMessage"]
    assert await batches(db_url, project) == []  # nothing accepted: nothing published


async def test_a_gzip_body_is_read(api: Api, project: str, db_url: str) -> None:
    key = await api.new_key(project, "editor")
    body = gzip.compress(request_json(span_json("00f067aa0ba902b7"), span_json("00f067aa0ba902b8")))
    r = await post(api, body, key=key, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.json() == {}  # full success: partial_success left unset
    [(_, batch)] = await batches(db_url, project)
    assert batch.spans == 2 and batch.content_type == "application/json"


async def test_a_signed_in_user_names_the_project_in_a_header(api: Api, project: str, db_url: str) -> None:
    r = await post(api, request_json(span_json("00f067aa0ba902b7")))
    body = error(r, 400, "invalid_input")
    assert "x-agiflow-project" in body["message"] and body["details"]["field"] == "x-agiflow-project"
    r = await post(api, request_json(span_json("00f067aa0ba902b7")), headers={"x-agiflow-project": project})
    assert r.status_code == 200, r.text
    assert len(await batches(db_url, project)) == 1


async def test_bodies_that_cannot_be_read_are_refused_with_their_status(api: Api, project: str) -> None:
    key = await api.new_key(project, "editor")
    error(await post(api, b"hello", "text/plain", key=key), 415, "unsupported_media_type")
    malformed = error(await post(api, b"\x0a\xff\xff\xff\xff", "application/x-protobuf", key=key), 400, "invalid_input")
    assert malformed["message"]
    error(await post(api, b"not gzip", key=key, headers={"Content-Encoding": "gzip"}), 400, "invalid_input")
    bomb = gzip.compress(b" " * (4 * 2 * MiB + 1))  # ~8 KiB on the wire, over the limit once inflated
    error(await post(api, bomb, key=key, headers={"Content-Encoding": "gzip"}), 413, "too_large")


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(api: Api, project: str) -> None:
    key = await api.new_key(project, "editor")
    url = urlsplit(api.server.api)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:  # the headers alone: the server must answer without waiting for 200 MiB
        writer.write(f"POST {url.path}{TRACES} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {key}\r\n"
                     f"Content-Type: application/x-protobuf\r\nContent-Length: {200 * MiB}\r\n\r\n".encode())  # fmt: skip
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.split()[1] == b"413", status_line


async def test_who_may_send_traces(api: Api, project: str, db_url: str) -> None:
    body = request_json(span_json("00f067aa0ba902b7"))
    error(await post(api, body, anonymous=True), 401, "unauthenticated")
    error(await post(api, body, key=await api.new_key(project, "viewer")), 403, "forbidden")
    other = f"o-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/projects", {"slug": other, "name": other})).status_code == 201
    foreign = await api.new_key(other, "owner")
    error(await post(api, body, key=foreign, headers={"x-agiflow-project": project}), 403, "forbidden")
    error(await post(api, body, user="stranger", headers={"x-agiflow-project": project}), 403, "forbidden")
    assert await batches(db_url, project) == []


class DownBus(PostgresBus):
    async def publish_batch(self, messages: Sequence[Outgoing]) -> list[str]:
        raise Unavailable("broker down")


async def test_a_bus_that_cannot_take_the_batch_is_a_503_to_retry(db: Database) -> None:
    """Service level (no broker to stop): the sender is told to retry, never a 200 for a batch not on the bus."""
    authz = Authorizer(db)
    projects = ProjectService(db, authz)
    await projects.ensure("down", "Down", "olivia")
    ingest = TraceIngest(projects, authz, DownBus(db), max_body_bytes=MiB, accepts=lambda _: True)
    body = request_json(span_json("00f067aa0ba902b7"))
    with pytest.raises(IngestUnavailable) as caught:
        await ingest.accept(Actor.system(), "down", body, "application/json", None)
    assert caught.value.status == 503 and caught.value.retry_after > 0
