"""Bus latency and throughput, per backend: publish→consume p50/p95/p99, and the same through the outbox.

    python bench/bus.py [--messages 300] [--backends postgres,kafka] [--interval-ms 5]

Starts its own embedded Postgres; for Kafka it uses ``$AGIFLOW_KAFKA_BOOTSTRAP`` or starts a broker with
``scripts/kafka_broker.py``. Everything runs in this one process and event loop, so a latency is
``time.perf_counter()`` at delivery minus the same clock just before the publish call.

(a) direct: ``bus.publish`` one message every ``--interval-ms`` (paced, so the figure is latency, not
    queueing), one consumer acking each message.
(b) outbox: ``enqueue`` inside a committed transaction, the relay woken by NOTIFY publishes it.
(c) throughput: 10 x ``--messages`` over 64 keys published as one batch, drained by one consumer
    (``Consumer.run``, max_in_flight=16, an empty handler); includes the batch publish.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import percentile  # noqa: E402

from agiflow_lab.bus import Bus, Message, OutboxRelay, Outgoing, enqueue  # noqa: E402
from agiflow_lab.bus.kafka import KafkaBus  # noqa: E402
from agiflow_lab.bus.postgres import PostgresBus  # noqa: E402
from agiflow_lab.db import migrate  # noqa: E402
from agiflow_lab.db.database import Database  # noqa: E402
from tests.support.servers import create_database, start_postgres  # noqa: E402


def describe(name: str, latencies_ms: list[float]) -> str:
    return (
        f"  {name:<10} n={len(latencies_ms):<5} p50={percentile(latencies_ms, 50):7.2f} ms  "
        f"p95={percentile(latencies_ms, 95):7.2f} ms  p99={percentile(latencies_ms, 99):7.2f} ms"
    )


async def paced_latency(
    bus: Bus, topic: str, n: int, interval: float, send: Callable[[str, dict[str, Any]], Awaitable[None]]
) -> list[float]:
    latencies: list[float] = []
    async with bus.consume([topic], f"bench-{uuid.uuid4().hex[:8]}") as consumer:

        async def receive() -> None:
            async for delivery in consumer:
                latencies.append((time.perf_counter() - delivery.message.payload["t"]) * 1000)
                await delivery.ack()
                if len(latencies) == n:
                    return

        receiver = asyncio.create_task(receive())
        for i in range(n):
            await send(topic, {"i": i, "t": time.perf_counter()})
            await asyncio.sleep(interval)
        await asyncio.wait_for(receiver, 120)
    return latencies


async def throughput(bus: Bus, topic: str, n: int) -> float:
    batch = [Outgoing(topic, f"k{i % 64}", {"i": i}) for i in range(n)]
    received = 0
    finished = asyncio.Event()

    async def handler(message: Message) -> None:
        nonlocal received
        received += 1
        if received == n:
            finished.set()

    async with bus.consume([topic], f"bench-{uuid.uuid4().hex[:8]}", max_in_flight=16) as consumer:
        start = time.perf_counter()
        await bus.publish_batch(batch)
        runner = asyncio.create_task(consumer.run(handler))  # settles up to 16 deliveries concurrently
        try:
            await asyncio.wait_for(finished.wait(), 300)
        finally:
            runner.cancel()
        return n / (time.perf_counter() - start)


async def bench_backend(kind: str, db: Database, bootstrap: str | None, args: argparse.Namespace) -> None:
    bus: Bus = PostgresBus(db) if kind == "postgres" else KafkaBus(str(bootstrap), topics=())
    await bus.start()
    try:
        print(f"{kind}:")
        suffix = uuid.uuid4().hex[:8]

        async def direct(topic: str, payload: dict[str, Any]) -> None:
            await bus.publish(topic, "job-1", payload)

        async def via_outbox(topic: str, payload: dict[str, Any]) -> None:
            async with db.transaction() as conn:
                await enqueue(conn, topic, "job-1", payload)

        # Warm-up: topic creation, group join, connection pools.
        await paced_latency(bus, f"warm-{suffix}", 5, 0.01, direct)
        lat = await paced_latency(bus, f"direct-{suffix}", args.messages, args.interval_ms / 1000, direct)
        print(describe("direct", lat))
        async with OutboxRelay(db, bus):
            lat = await paced_latency(bus, f"outbox-{suffix}", args.messages, args.interval_ms / 1000, via_outbox)
        print(describe("outbox", lat))
        rate = await throughput(bus, f"batch-{suffix}", args.messages * 10)
        print(f"  throughput {rate:,.0f} msg/s ({args.messages * 10} messages over 64 keys, one consumer)")
    finally:
        await bus.close()


def start_kafka() -> tuple[str, Any]:
    spec = importlib.util.spec_from_file_location("agiflow_bench_kafka_broker", ROOT / "scripts" / "kafka_broker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    broker = module.start()
    return broker.bootstrap, broker


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=5.0)
    parser.add_argument("--backends", default="postgres,kafka")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    server = await asyncio.to_thread(start_postgres, Path(tempfile.mkdtemp(prefix="agiflow-bench-")))
    url = await asyncio.to_thread(create_database, server)
    await migrate.upgrade(url)
    db = Database(url, min_size=2, max_size=10)
    await db.open()
    broker = None
    bootstrap = os.environ.get("AGIFLOW_KAFKA_BOOTSTRAP")
    try:
        if "kafka" in backends and not bootstrap:
            bootstrap, broker = await asyncio.to_thread(start_kafka)
        print(f"{args.messages} messages paced every {args.interval_ms} ms; latency = publish call → delivery")
        for kind in backends:
            await bench_backend(kind, db, bootstrap, args)
    finally:
        await db.close()
        if broker is not None:
            await asyncio.to_thread(broker.stop)


if __name__ == "__main__":
    asyncio.run(main())
