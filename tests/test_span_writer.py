"""The span writer: batches on the ``spans`` topic end up in the span store, once each, and a batch that
cannot be read is dead-lettered without holding up the others.

Real things throughout: a fresh migrated database per test (``db``), the Postgres bus on it, a project
row, OTLP protobuf bodies built with ``opentelemetry.proto`` as an exporter would send them, and a
``SpanWriter`` running in-process. One test repeats the happy path on the session's Kafka broker.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.bus.base import Bus, RetryPolicy
from agiflow_lab.bus.kafka import KafkaBus
from agiflow_lab.bus.kafka_security import KafkaSecurity
from agiflow_lab.bus.postgres import PostgresBus, dead_letters
from agiflow_lab.bus.topics import SPANS
from agiflow_lab.db.database import Database
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.traces.errors import OtlpError, OtlpTooLarge
from agiflow_lab.traces.messages import SPAN_WRITERS, SpanBatch
from agiflow_lab.traces.otlp import decode_body
from agiflow_lab.traces.store import PostgresSpanStore
from agiflow_lab_workers.span_writer import SpanWriter
from agiflow_lab_workers.worker import Worker, WorkerOptions
from tests.support.polling import until

if TYPE_CHECKING:  # a runtime import would load the plugin before pytest can assert-rewrite it
    from tests.support.kafka import Broker

PROTOBUF = "application/x-protobuf"
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.05, backoff_max=0.2)
NOW = datetime.now(UTC)
T0 = int(NOW.timestamp()) * 10**9 - 3600 * 10**9  # an hour ago: inside the store's window, whole seconds


def trace_id(n: int) -> bytes:
    return n.to_bytes(16, "big")


def export(trace: int, spans: range) -> bytes:
    """An OTLP/protobuf export request: one span per number, in one trace, the first the root."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "chatbot"
    scope_spans = resource_spans.scope_spans.add()
    for n in spans:
        scope_spans.spans.append(
            Span(
                trace_id=trace_id(trace),
                span_id=n.to_bytes(8, "big"),
                parent_span_id=b"" if n == spans.start else spans.start.to_bytes(8, "big"),
                name=f"span {n}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=T0 + n * 1000,
                end_time_unix_nano=T0 + n * 1000 + 5_000_000,
            )
        )
    return bytes(message.SerializeToString())


def batch(project: int, trace: int, spans: range) -> dict[str, Any]:
    return SpanBatch.of(project, PROTOBUF, export(trace, spans), NOW, len(spans)).model_dump(mode="json")


async def span_ids(store: PostgresSpanStore, project: int, trace: int) -> list[str]:
    page = await store.get_trace(project, trace_id(trace).hex(), limit=5000)
    return [s.span_id for s in page.spans]


def hexes(spans: range) -> list[str]:
    return [n.to_bytes(8, "big").hex() for n in spans]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
async def project(db: Database) -> int:
    projects = ProjectService(db, Authorizer(db))
    await projects.ensure("p", "p", "olivia")
    return await projects.resolve_id("p")


@pytest.fixture
def store(db: Database) -> PostgresSpanStore:
    return PostgresSpanStore(db)


@pytest.fixture
async def bus(db: Database) -> AsyncIterator[Bus]:
    async with PostgresBus(db, retry=FAST_RETRY) as started:
        yield started


@pytest.fixture
async def writer(db: Database, bus: Bus, store: PostgresSpanStore) -> AsyncIterator[SpanWriter]:
    running = SpanWriter(db, bus, store)
    running.start()
    yield running
    await running.stop()


# ---------------------------------------------------------------- the Postgres bus


async def test_published_batches_are_stored_as_exactly_their_spans(
    writer: SpanWriter, bus: Bus, store: PostgresSpanStore, project: int
) -> None:
    await bus.publish(SPANS, trace_id(1).hex(), batch(project, 1, range(1, 6)))
    await bus.publish(SPANS, trace_id(2).hex(), batch(project, 2, range(10, 13)))
    await bus.publish(SPANS, trace_id(1).hex(), batch(project, 1, range(6, 8)))  # the rest of trace 1, later

    async def stored() -> bool:
        summaries = (await store.list_traces(project)).items
        return sorted(t.span_count for t in summaries) == [3, 7]

    await until(stored, "both traces stored", timeout=30)
    traces = {t.trace_id: t for t in (await store.list_traces(project)).items}
    assert set(traces) == {trace_id(1).hex(), trace_id(2).hex()}
    assert traces[trace_id(1).hex()].name == "span 1" and traces[trace_id(1).hex()].has_root
    assert await span_ids(store, project, 1) == hexes(range(1, 8))
    assert await span_ids(store, project, 2) == hexes(range(10, 13))


async def test_a_batch_delivered_again_stores_each_span_once(
    db: Database, bus: Bus, store: PostgresSpanStore, project: int
) -> None:
    payload = batch(project, 3, range(1, 5))
    # A writer that stored the batch and died before acking: the bus hands it out again (attempt 2).
    async with bus.consume([SPANS], SPAN_WRITERS) as dying:
        await bus.publish(SPANS, trace_id(3).hex(), payload)
        delivery = await anext(dying)
        sent = SpanBatch.model_validate(delivery.message.payload)
        decoded = decode_body(sent.request_body(1 << 20), sent.content_type, None, max_bytes=1 << 20)
        assert await store.load(project, decoded.spans) == 4
        await delivery.retry("worker died before the ack")
    await bus.publish(SPANS, trace_id(3).hex(), payload)  # and the receiver's client sent it twice
    running = SpanWriter(db, bus, store)
    running.start()
    try:

        async def settled() -> list[tuple[str, int]]:
            async with db.connection() as conn:
                cur = await conn.execute(
                    "SELECT state, attempts FROM control.bus_deliveries WHERE group_name = %s ORDER BY attempts",
                    (SPAN_WRITERS,),
                )
                rows = [(r["state"], r["attempts"]) for r in await cur.fetchall()]
            return rows if all(state == "done" for state, _ in rows) else []

        # the redelivery (attempt 2) and the duplicate (attempt 1), both acked
        assert await until(settled, "both deliveries acked", timeout=30) == [("done", 1), ("done", 2)]
    finally:
        await running.stop()
    [summary] = (await store.list_traces(project)).items
    assert summary.span_count == 4
    assert await span_ids(store, project, 3) == hexes(range(1, 5))


async def test_an_unreadable_batch_is_dead_lettered_and_the_writer_carries_on(
    db: Database, writer: SpanWriter, bus: Bus, store: PostgresSpanStore, project: int
) -> None:
    garbage = await bus.publish(SPANS, "x", {"not": "a span batch"})
    not_protobuf = SpanBatch.of(project, PROTOBUF, b"\xff\xfe definitely not protobuf", NOW, 1)
    broken = await bus.publish(SPANS, "y", not_protobuf.model_dump(mode="json"))
    not_zstd = not_protobuf.model_copy(update={"body": b"\x28\xb5\x2f\xfd not a frame"})
    corrupt = await bus.publish(SPANS, "z", not_zstd.model_dump(mode="json"))
    await bus.publish(SPANS, trace_id(4).hex(), batch(project, 4, range(1, 3)))

    async def dead() -> list[Any]:
        letters = await dead_letters(db, SPANS, SPAN_WRITERS)
        return letters if len(letters) == 3 else []

    letters = {d.message.id: d for d in await until(dead, "three dead letters", timeout=30)}
    assert set(letters) == {garbage, broken, corrupt}
    assert all(d.message.attempt == 1 for d in letters.values())  # dead at once, not after retries
    assert "ValidationError" in (letters[garbage].error or "")
    assert "OtlpError" in (letters[broken].error or "")
    assert "invalid span batch body" in (letters[corrupt].error or "")
    await until(lambda: span_ids(store, project, 4), "the good batch stored", timeout=30)
    assert await span_ids(store, project, 4) == hexes(range(1, 3))


async def test_a_batch_published_before_bodies_were_zstd_is_still_stored(
    writer: SpanWriter, bus: Bus, store: PostgresSpanStore, project: int
) -> None:
    """Messages still on the bus from before an upgrade: no ``encoding``, the body zlib-compressed."""
    old = batch(project, 5, range(1, 4))
    del old["encoding"]
    old["body"] = base64.b64encode(zlib.compress(export(5, range(1, 4)), 1)).decode()
    await bus.publish(SPANS, trace_id(5).hex(), old)
    await until(lambda: span_ids(store, project, 5), "the old batch stored", timeout=30)
    assert await span_ids(store, project, 5) == hexes(range(1, 4))


def test_a_batch_body_is_refused_past_the_limit_before_it_is_inflated() -> None:
    data = export(6, range(1, 50))
    sent = SpanBatch.of(1, PROTOBUF, data, NOW, 49)
    assert sent.encoding == "zstd" and len(sent.body) < len(data)
    assert SpanBatch.model_validate_json(sent.model_dump_json()).request_body(len(data)) == data
    with pytest.raises(OtlpTooLarge):
        sent.request_body(len(data) - 1)
    legacy = SpanBatch(project_id=1, content_type=PROTOBUF, body=zlib.compress(data, 1), received_at=NOW, spans=49)
    assert legacy.encoding == "deflate" and legacy.request_body(len(data)) == data
    with pytest.raises(OtlpTooLarge):
        legacy.request_body(len(data) - 1)
    with pytest.raises(OtlpError, match="truncated"):
        legacy.model_copy(update={"body": legacy.body[:-10]}).request_body(len(data))
    with pytest.raises(OtlpError, match="invalid span batch body"):
        sent.model_copy(update={"body": sent.body[:-10]}).request_body(len(data))


# ---------------------------------------------------------------- the worker role


async def test_a_dedicated_span_writer_worker_stores_spans_and_stops_at_once(
    db: Database, bus: Bus, store: PostgresSpanStore, project: int, tmp_path: Path
) -> None:
    """``agiflow-lab worker --roles spans``: no kernels, no job API; stopped, it is gone within seconds."""
    worker = Worker(WorkerOptions(database_url=db.url, work_dir=tmp_path, bus="postgres", roles=("spans",)))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await bus.publish(SPANS, trace_id(7).hex(), batch(project, 7, range(1, 4)))
        await until(lambda: span_ids(store, project, 7), "spans stored by the worker", timeout=30)
    finally:
        stop.set()
        began = time.monotonic()
        await asyncio.wait_for(running, 15)
    assert time.monotonic() - began < 5
    assert await span_ids(store, project, 7) == hexes(range(1, 4))
    assert not hasattr(worker, "job_api")  # the job side was never opened


# ---------------------------------------------------------------- Kafka


async def test_on_kafka_batches_are_stored_once_each(
    kafka_broker: Broker, db: Database, store: PostgresSpanStore, project: int
) -> None:
    topic = f"{SPANS}-{uuid.uuid4().hex[:12]}"  # the session's broker is shared: a topic and group of our own
    bus = KafkaBus(kafka_broker.bootstrap, security=KafkaSecurity(*kafka_broker.credentials), partitions=2,
                   topics=[topic], retry=FAST_RETRY)  # fmt: skip
    await bus.start()
    running = SpanWriter(db, bus, store, topic=topic, group=f"g-{uuid.uuid4().hex[:8]}")
    running.start()
    try:
        payload = batch(project, 5, range(1, 4))
        await bus.publish(topic, trace_id(5).hex(), payload)
        await bus.publish(topic, trace_id(5).hex(), payload)  # sent twice
        await bus.publish(topic, trace_id(6).hex(), batch(project, 6, range(1, 3)))

        async def stored() -> bool:
            return len((await store.list_traces(project)).items) == 2

        await until(stored, "both traces stored from Kafka", timeout=90)
    finally:
        await running.stop()
        await bus.close()
    assert await span_ids(store, project, 5) == hexes(range(1, 4))
    assert await span_ids(store, project, 6) == hexes(range(1, 3))
