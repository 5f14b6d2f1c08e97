"""The message bus behaves the same on both backends: a fresh database per test, the session's Kafka broker.

Every test that takes ``bus`` runs twice, once per backend, against real servers. Topics and groups are
unique per test, so Kafka tests share one broker without seeing each other's messages. The broker
outage test stops the session broker and therefore comes last.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from agiflow_lab.bus import JOBS, Bus, Consumer, Message, OutboxRelay, RetryPolicy, enqueue, first_time, make_bus
from agiflow_lab.bus.kafka import KafkaBus, dlq_topic
from agiflow_lab.bus.kafka_security import KafkaSecurity
from agiflow_lab.bus.postgres import PostgresBus, dead_letters, requeue
from agiflow_lab.config import Settings
from agiflow_lab.db.database import Database
from agiflow_lab.errors import InvalidInput, NotFound

if TYPE_CHECKING:  # a runtime import would load the plugin before pytest can assert-rewrite it
    from tests.support.kafka import Broker

BACKENDS = ["postgres", "kafka"]
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.05, backoff_max=0.2)

BusFactory = Callable[..., Awaitable[Bus]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make(backend: str, db: Database, request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Start buses of this test's backend (several stand for several processes); all closed at the end."""
    started: list[Bus] = []
    broker: Broker | None = request.getfixturevalue("kafka_broker") if backend == "kafka" else None

    async def factory(**options: Any) -> Bus:
        options.setdefault("retry", FAST_RETRY)
        new: Bus
        if broker is not None:
            options.setdefault("topics", ())
            options.setdefault("heartbeat_interval_ms", 300)
            options.setdefault("session_timeout_ms", 6000)
            new = KafkaBus(broker.bootstrap, security=KafkaSecurity(*broker.credentials), partitions=4, **options)
        else:
            new = PostgresBus(db, **options)
        await new.start()
        started.append(new)
        return new

    yield factory
    for each in reversed(started):
        await each.close()


@pytest.fixture
async def bus(make: BusFactory) -> Bus:
    return await make()


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


async def take(consumer: Consumer, n: int, *, timeout: float = 30) -> list[Message]:
    """The next ``n`` messages, each acked."""
    got: list[Message] = []
    async with asyncio.timeout(timeout):
        async for delivery in consumer:
            got.append(delivery.message)
            await delivery.ack()
            if len(got) == n:
                break
    return got


async def assert_idle(consumer: Consumer, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            delivery = await anext(consumer)
            pytest.fail(f"unexpected delivery {delivery.message}")


async def test_publish_consume_ack(bus: Bus, topic: str) -> None:
    g = group()
    async with bus.consume([topic], g) as consumer:
        ids = [await bus.publish(topic, "job-1", {"n": n}, headers={"trace": f"t{n}"}) for n in range(3)]
        got = await take(consumer, 3)
    assert [m.id for m in got] == ids
    assert [m.payload for m in got] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert {(m.topic, m.key, m.attempt) for m in got} == {(topic, "job-1", 1)}
    assert [m.headers for m in got] == [{"trace": "t0"}, {"trace": "t1"}, {"trace": "t2"}]
    async with bus.consume([topic], g) as again:  # acked means gone for this group
        await assert_idle(again, 2)


async def test_messages_with_one_key_are_handled_in_order_one_at_a_time(bus: Bus, topic: str) -> None:
    published: dict[str, list[str]] = defaultdict(list)
    for n in range(8):
        for key in ("job-a", "job-b", "job-c"):
            published[key].append(await bus.publish(topic, key, {"n": n}))
    handled: dict[str, list[str]] = defaultdict(list)
    running: dict[str, int] = defaultdict(int)
    overlaps: list[str] = []
    done = asyncio.Event()

    async def handler(message: Message) -> None:
        running[message.key] += 1
        if running[message.key] > 1:
            overlaps.append(message.key)
        await asyncio.sleep(0.01 * (hash(message.id) % 3))
        handled[message.key].append(message.id)
        running[message.key] -= 1
        if sum(map(len, handled.values())) == 24:
            done.set()

    async with bus.consume([topic], group(), max_in_flight=6) as consumer:
        runner = asyncio.create_task(consumer.run(handler))
        try:
            await asyncio.wait_for(done.wait(), 60)
        finally:
            runner.cancel()
    assert handled == published
    assert overlaps == []


async def test_members_of_one_group_share_the_work_without_duplicates(bus: Bus, topic: str) -> None:
    g = group()
    first, second = bus.consume([topic], g), bus.consume([topic], g)
    await first.start()
    await second.start()  # on Kafka: returns once the rebalance gave it partitions
    seen: dict[str, list[str]] = {"first": [], "second": []}
    ids = [await bus.publish(topic, f"job-{n}", {"n": n}) for n in range(40)]
    all_done = asyncio.Event()

    def member(name: str) -> Callable[[Message], Awaitable[None]]:
        async def handler(message: Message) -> None:
            await asyncio.sleep(0.02)
            seen[name].append(message.id)
            if len(seen["first"]) + len(seen["second"]) >= len(ids):
                all_done.set()

        return handler

    runners = [asyncio.create_task(first.run(member("first"))), asyncio.create_task(second.run(member("second")))]
    try:
        await asyncio.wait_for(all_done.wait(), 60)
        await asyncio.sleep(1)  # a duplicate would show up now
    finally:
        for runner in runners:
            runner.cancel()
        await first.close()
        await second.close()
    everything = seen["first"] + seen["second"]
    assert sorted(everything) == sorted(ids)
    assert seen["first"] and seen["second"]


async def test_every_group_gets_every_message(bus: Bus, topic: str) -> None:
    early = [await bus.publish(topic, "k", {"n": n}) for n in range(2)]  # before either group exists
    async with bus.consume([topic], group()) as one, bus.consume([topic], group()) as two:
        late = [await bus.publish(topic, "k", {"n": n}) for n in range(2, 4)]
        got_one, got_two = await asyncio.gather(take(one, 4), take(two, 4))
    assert [m.id for m in got_one] == early + late
    assert [m.id for m in got_two] == early + late


async def test_failures_are_retried_then_dead_lettered_and_hold_back_their_key(
    bus: Bus, topic: str, backend: str, db: Database
) -> None:
    g = group()
    poison = await bus.publish(topic, "job-1", {"step": "poison"})
    after = await bus.publish(topic, "job-1", {"step": "after"})
    seen: list[tuple[str, int]] = []
    async with bus.consume([topic], g) as consumer:
        async with asyncio.timeout(30):
            async for delivery in consumer:
                seen.append((delivery.message.payload["step"], delivery.message.attempt))
                if delivery.message.id == poison:
                    await delivery.retry("boom")
                else:
                    await delivery.ack()
                    break
    assert seen == [("poison", 1), ("poison", 2), ("poison", 3), ("after", 1)]

    if backend == "postgres":
        [letter] = await dead_letters(db, topic)
        assert (letter.message.id, letter.group, letter.message.attempt) == (poison, g, 3)
        assert letter.error is not None and "boom" in letter.error
        await requeue(db, poison, g)
        with pytest.raises(NotFound):
            await requeue(db, poison, g)  # no longer dead
        async with bus.consume([topic], g) as consumer:
            [again] = await take(consumer, 1)
        assert (again.id, again.attempt) == (poison, 1)
        assert await dead_letters(db, topic) == []
    else:
        async with bus.consume([dlq_topic(topic)], group()) as dlq:
            [letter_message] = await take(dlq, 1)
        assert (letter_message.id, letter_message.key) == (poison, "job-1")
        assert letter_message.payload == {"step": "poison"}
        assert "boom" in letter_message.headers["agiflow-error"]
        assert letter_message.headers["agiflow-group"] == g
        assert letter_message.headers["agiflow-attempts"] == "3"
    assert after  # delivered above, after the poison message was given up


async def test_unsettled_message_is_redelivered_after_its_consumer_dies(
    make: BusFactory, topic: str, backend: str
) -> None:
    options = {"lease_seconds": 1.0} if backend == "postgres" else {}
    doomed, survivor = await make(**options), await make(**options)
    g = group()
    consumer = doomed.consume([topic], g)
    message_id = await doomed.publish(topic, "job-1", {"n": 1})
    delivery = await asyncio.wait_for(anext(consumer), 30)
    assert delivery.message.id == message_id
    await doomed.close()  # the process "dies": no ack, no commit, no more lease heartbeats

    async with survivor.consume([topic], g) as other:
        async with asyncio.timeout(30):
            redelivered = await anext(other)
        await redelivered.ack()
    assert redelivered.message.id == message_id
    if backend == "postgres":
        assert redelivered.message.attempt == 2  # the lost lease counted as an attempt


async def test_a_large_payload_is_stored_whole_and_postgres_does_not_try_to_compress_it(
    db: Database, topic: str
) -> None:
    """Span batches are compressed already: pglz would compress each one only to throw the result away, a
    cost invisible in what is stored (0019), hence the column's storage is checked too."""
    bus = PostgresBus(db)
    await bus.start()
    try:
        body = os.urandom(96 * 1024).hex()
        message_id = await bus.publish(topic, "k", {"body": body})
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT payload->>'body' = %s AS same FROM control.bus_messages WHERE id = %s",
                (body, uuid.UUID(message_id)),
            )
            assert await cur.fetchone() == {"same": True}
            cur = await conn.execute(
                """SELECT attstorage FROM pg_attribute
                    WHERE attrelid = 'control.bus_messages'::regclass AND attname = 'payload'"""
            )
            assert await cur.fetchone() == {"attstorage": "e"}  # external: out of line, never compressed
    finally:
        await bus.close()


async def test_a_lease_lost_on_the_last_attempt_dead_letters(db: Database, topic: str) -> None:
    """A message that kills every consumer that takes it must not loop forever."""
    policy = RetryPolicy(max_attempts=1)
    doomed = PostgresBus(db, retry=policy, lease_seconds=0.5)
    survivor = PostgresBus(db, retry=policy, lease_seconds=0.5, poll_interval=0.2)
    await doomed.start()
    await survivor.start()
    try:
        g = group()
        consumer = doomed.consume([topic], g)
        message_id = await doomed.publish(topic, "k", {})
        await asyncio.wait_for(anext(consumer), 10)
        await doomed.close()
        async with survivor.consume([topic], g) as other:
            await assert_idle(other, 2)
        [letter] = await dead_letters(db, topic, g)
        assert letter.message.id == message_id
        assert letter.error is not None and "lease expired" in letter.error
    finally:
        await doomed.close()
        await survivor.close()


async def test_a_redelivery_never_duplicates_a_result(bus: Bus, topic: str, db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("CREATE TABLE results (job text PRIMARY KEY, runs integer NOT NULL)")
        await conn.execute("INSERT INTO results VALUES ('job-1', 0)")
    message_id = await bus.publish(topic, "job-1", {"job": "job-1"})
    attempts: list[tuple[int, bool]] = []
    async with bus.consume([topic], group()) as consumer:
        async with asyncio.timeout(30):
            async for delivery in consumer:
                async with db.transaction() as conn:
                    fresh = await first_time(conn, "result-writer", delivery.message.id)
                    if fresh:
                        await conn.execute("UPDATE results SET runs = runs + 1 WHERE job = 'job-1'")
                attempts.append((delivery.message.attempt, fresh))
                if delivery.message.attempt == 1:
                    await delivery.retry("crashed after committing, before acking")
                else:
                    await delivery.ack()
                    break
    assert attempts == [(1, True), (2, False)]
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT runs FROM results")).fetchone()
        assert row == {"runs": 1}
        assert await first_time(conn, "another-consumer", message_id)  # markers are per consumer


async def test_first_time_marker_rolls_back_with_the_work(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            assert await first_time(conn, "c", "m-1")
            raise RuntimeError("the handler failed")
    async with db.transaction() as conn:
        assert await first_time(conn, "c", "m-1")
        assert not await first_time(conn, "c", "m-1")


async def test_outbox_publishes_only_what_commits_in_order(bus: Bus, db: Database, topic: str) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await enqueue(conn, topic, "job-1", {"n": "rolled back"})
            raise RuntimeError("the state change failed")
    ids = []
    for n in range(5):
        async with db.transaction() as conn:
            ids.append(await enqueue(conn, topic, "job-1", {"n": n}))
    async with OutboxRelay(db, bus), bus.consume([topic], group()) as consumer:
        got = await take(consumer, 5)
        await assert_idle(consumer, 1)
    assert [m.id for m in got] == ids
    assert [m.payload for m in got] == [{"n": n} for n in range(5)]
    async with db.connection() as conn:
        row = await (await conn.execute("SELECT count(*) AS n FROM control.bus_outbox")).fetchone()
        assert row == {"n": 0}


async def test_only_one_relay_publishes_at_a_time(bus: Bus, db: Database, topic: str) -> None:
    async with OutboxRelay(db, bus) as one, OutboxRelay(db, bus) as two:
        async with asyncio.timeout(10):
            while not (one.leader or two.leader):
                await asyncio.sleep(0.05)
        assert one.leader != two.leader
        async with db.transaction() as conn:
            message_id = await enqueue(conn, topic, "k", {})
        async with bus.consume([topic], group()) as consumer:
            [got] = await take(consumer, 1)
    assert got.id == message_id


async def test_notify_wakes_an_idle_consumer_long_before_the_poll(db: Database, topic: str) -> None:
    bus = PostgresBus(db, poll_interval=30)
    await bus.start()
    try:
        async with bus.consume([topic], group()) as consumer:
            waiting = asyncio.create_task(anext(consumer))
            await asyncio.sleep(0.5)  # the consumer has looked, found nothing and gone to sleep
            assert not waiting.done()
            message_id = await bus.publish(topic, "k", {})
            delivery = await asyncio.wait_for(waiting, 5)  # far shorter than the 30 s poll
            await delivery.ack()
            assert delivery.message.id == message_id

            # The same through the outbox: the relay is woken by NOTIFY as well.
            async with OutboxRelay(db, bus, poll_interval=30) as relay:
                async with asyncio.timeout(10):
                    while not relay.leader:
                        await asyncio.sleep(0.05)
                waiting = asyncio.create_task(anext(consumer))
                await asyncio.sleep(0.5)
                async with db.transaction() as conn:
                    message_id = await enqueue(conn, topic, "k", {})
                delivery = await asyncio.wait_for(waiting, 5)
                await delivery.ack()
                assert delivery.message.id == message_id
    finally:
        await bus.close()


async def test_kafka_topics_are_created_with_the_configured_partitions(kafka_broker: Broker) -> None:
    topic = f"t-{uuid.uuid4().hex[:12]}"
    bus = KafkaBus(
        kafka_broker.bootstrap, security=KafkaSecurity(*kafka_broker.credentials), partitions=3, topics=[topic]
    )
    await bus.start()
    try:
        producer = await bus._ready_producer()
        assert len(await producer.partitions_for(topic)) == 3
        assert len(await producer.partitions_for(dlq_topic(topic))) == 3
    finally:
        await bus.close()


async def test_the_backend_is_chosen_by_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """One Settings decides: the name, Kafka's settings from the environment, or a Bus subclass's path."""
    db = Database("postgresql:///unused")
    for name in ("AGIFLOW_BUS", "AGIFLOW_KAFKA_BOOTSTRAP", "AGIFLOW_KAFKA_PARTITIONS", "AGIFLOW_BUS_LEASE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(make_bus(Settings().with_env(), db), PostgresBus)
    monkeypatch.setenv("AGIFLOW_BUS", "kafka")
    monkeypatch.setenv("AGIFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setenv("AGIFLOW_KAFKA_PARTITIONS", "6")
    kafka = make_bus(Settings().with_env(), db)
    assert isinstance(kafka, KafkaBus) and kafka.partitions == 6
    monkeypatch.setenv("AGIFLOW_BUS_LEASE_SECONDS", "7")
    postgres = make_bus(replace(Settings().with_env(), bus="postgres"), db)
    assert isinstance(postgres, PostgresBus) and postgres.lease_seconds == 7
    plugged = make_bus(Settings(bus="tests.test_bus.VendorBus"), db)
    assert isinstance(plugged, VendorBus)
    with pytest.raises(InvalidInput):
        make_bus(Settings(bus="kafka"), db)  # no bootstrap servers
    for wrong in ("rabbitmq", "tests.test_bus.no_such_thing", "agiflow_lab.config.Settings"):
        with pytest.raises(InvalidInput):
            make_bus(Settings(bus=wrong), db)


class VendorBus(PostgresBus):
    """A backend from outside the package, named by its import path (``c.AgiflowLab.bus_class``)."""

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, *, retry: RetryPolicy | None = None) -> VendorBus:
        return cls(db, retry=retry)


async def test_a_job_submitted_while_kafka_is_down_is_delivered_when_it_returns(
    kafka_broker: Broker, db: Database
) -> None:
    """Last in the file: it stops the session's broker (and always starts it again)."""
    topic = f"{JOBS}-{uuid.uuid4().hex[:12]}"
    bus = KafkaBus(
        kafka_broker.bootstrap,
        security=KafkaSecurity(*kafka_broker.credentials),
        topics=[topic],
        request_timeout_ms=10_000,
    )
    await bus.start()
    relay = OutboxRelay(db, bus, backoff_max=1.0, publish_timeout=15)
    relay.start()
    try:
        await asyncio.to_thread(kafka_broker.stop)
        async with db.transaction() as conn:  # the API call succeeds: the broker is not involved
            message_id = await enqueue(conn, topic, "job-1", {"job_id": "job-1"})
        await asyncio.sleep(2)
        async with db.connection() as conn:
            row = await (await conn.execute("SELECT count(*) AS n FROM control.bus_outbox")).fetchone()
            assert row == {"n": 1}  # kept until the broker has it
        await asyncio.to_thread(kafka_broker.restart)
        async with bus.consume([topic], group()) as consumer:
            [got] = await take(consumer, 1, timeout=90)
        assert got.id == message_id and got.payload == {"job_id": "job-1"}
    finally:
        await relay.stop()
        await bus.close()
        if kafka_broker.process is None or kafka_broker.process.poll() is not None:
            await asyncio.to_thread(kafka_broker.restart)
