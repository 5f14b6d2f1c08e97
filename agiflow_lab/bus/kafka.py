"""The Kafka backend (aiokafka), for a team that has outgrown one machine.

Producing: an idempotent producer with ``acks=all``; the message key is the Kafka key, so one key (one
job) always lands on one partition and stays in order. Topics are created at start with the
configured partition count, never left to broker auto-creation and its defaults.

Consuming: one ``AIOKafkaConsumer`` per ``consume()`` call, auto-commit off. A background task keeps
calling ``getmany`` and fills a bounded buffer, pausing the assigned partitions while the buffer is
full. Because polling never waits for a handler, a notebook job that runs for an hour does not trip
``max_poll_interval_ms`` and get the member thrown out of its group; heartbeats run on aiokafka's own
task. A partition's offset is committed only up to the first message not yet settled (acked or
dead-lettered), so settlements may arrive in any order and a crash redelivers everything unsettled.

Ordering and retries match the Postgres backend: a message is handed out only when no earlier message
with the same key (hence the same partition) is unsettled, and ``retry`` redelivers the same record
from memory after the backoff, holding back later messages of that key while other keys proceed.
Re-publishing to the topic would not block anyone but would break per-key order, which job events
need. The attempt count lives in the consumer, so a consumer crash restarts it. ``dead`` (and the
last failed attempt) publishes to ``<topic>.dlq`` with the error in headers, then commits.

On a rebalance, revoked partitions get ``revoke_grace`` seconds for in-flight work to settle and
commit; anything still running after that is redelivered to the new owner (handlers are idempotent).

Outages: the broker is a service of its own and can vanish while nothing is published, so the bus
probes it (cluster metadata through the producer's client) every couple of seconds, and on a capped
backoff while it is unreachable; ``health`` holds the result for ``/status`` and logs each outage once
(see ``agiflow_lab.bus.health``, which also quiets aiokafka's own per-attempt logging). A bus whose
broker is down at start still starts its probe and raises ``Unavailable``: callers keep going and
retry. Closing never waits on the broker for longer than ``close_timeout`` per client: aiokafka's
``stop()`` can wait indefinitely for an unreachable coordinator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from agiflow_lab.bus.base import Bus, Consumer, Delivery, Message, Outgoing, RetryPolicy
from agiflow_lab.bus.health import quiet_library_logs
from agiflow_lab.bus.kafka_security import KafkaSecurity
from agiflow_lab.bus.topics import ALL_TOPICS
from agiflow_lab.core.shutdown import finish_within
from agiflow_lab.errors import InvalidInput, Unavailable

if TYPE_CHECKING:
    from agiflow_lab.config import Settings
    from agiflow_lab.db.database import Database

log = logging.getLogger(__name__)

ID_HEADER = "agiflow-id"
CREATED_HEADER = "agiflow-created-at"
DLQ_SUFFIX = ".dlq"
_SYSTEM_HEADERS = {ID_HEADER, CREATED_HEADER}


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


class KafkaBus(Bus):
    @classmethod
    def from_settings(cls, settings: Settings, db: Database, *, retry: RetryPolicy | None = None) -> KafkaBus:
        if not settings.kafka_bootstrap:
            raise InvalidInput("the kafka bus needs bootstrap servers (AGIFLOW_KAFKA_BOOTSTRAP)", {"field": "bus"})
        session_ms = settings.kafka_session_timeout_ms
        return cls(
            settings.kafka_bootstrap, security=settings.kafka_security, partitions=settings.kafka_partitions,
            retry=retry, session_timeout_ms=session_ms, heartbeat_interval_ms=max(500, session_ms // 3),
        )  # fmt: skip

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        security: KafkaSecurity | None = None,
        partitions: int = 4,
        replication_factor: int = 1,
        client_id: str = "agiflow-lab",
        retry: RetryPolicy | None = None,
        topics: Iterable[str] = ALL_TOPICS,
        request_timeout_ms: int = 30_000,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        buffer_size: int = 500,
        revoke_grace: float = 5.0,
        join_timeout: float = 60.0,
        commit_timeout: float = 30.0,
        close_timeout: float = 3.0,
        probe_interval: float = 2.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.client_options: dict[str, Any] = security.client_options() if security else {}
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.client_id = client_id
        self.retry = retry or RetryPolicy()
        self.request_timeout_ms = request_timeout_ms
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.buffer_size = buffer_size
        self.revoke_grace = revoke_grace
        self.join_timeout = join_timeout
        self.commit_timeout = commit_timeout
        self.close_timeout = close_timeout
        self.probe_interval = probe_interval
        self._initial_topics = list(topics)
        self._known_topics: set[str] = set()
        self._topic_lock = asyncio.Lock()
        self._producer: Any = None
        self._producer_lock = asyncio.Lock()
        self._consumers: set[_KafkaConsumer] = set()
        quiet_library_logs("aiokafka")

    async def start(self) -> None:
        """Probe the broker from now on; raises ``Unavailable`` (after reporting it) if it is down."""
        quiet_library_logs("aiokafka")  # loggers of modules aiokafka imported since
        self.health.watch(self._probe, interval=self.probe_interval)
        try:
            await self.ensure_topics(self._initial_topics + [dlq_topic(t) for t in self._initial_topics])
            await self._ready_producer()
        except Unavailable as exc:
            self.health.down(exc)
            raise
        self.health.up()

    async def close(self) -> None:
        await self.health.unwatch()
        for consumer in list(self._consumers):
            await consumer.close()
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await finish_within(self.close_timeout, producer.stop(), "the Kafka producer")

    async def _probe(self) -> None:
        """Raises unless the broker answers a metadata request now."""
        producer = await self._ready_producer()
        await producer.client.fetch_all_metadata()

    async def _ready_producer(self) -> Any:
        """The started producer; started lazily too, so a bus created during an outage recovers."""
        async with self._producer_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id=self.client_id,
                    enable_idempotence=True,
                    acks="all",
                    request_timeout_ms=self.request_timeout_ms,
                    **self.client_options,
                )
                try:
                    await producer.start()
                except BaseException as exc:  # a timeout or cancel too: never leave a half-started client
                    await finish_within(self.close_timeout, producer.stop(), "a Kafka producer that did not start")
                    if isinstance(exc, KafkaError):
                        raise Unavailable("Kafka is unreachable", {"reason": str(exc)}) from exc
                    raise
                self._producer = producer
            return self._producer

    async def ensure_topics(self, topics: Iterable[str]) -> None:
        """Create missing topics with the configured partitions; existing ones are left as they are."""
        missing = sorted(set(topics) - self._known_topics)
        if not missing:
            return
        async with self._topic_lock:
            missing = sorted(set(missing) - self._known_topics)
            if not missing:
                return
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                request_timeout_ms=self.request_timeout_ms,
                **self.client_options,
            )
            try:
                await admin.start()
                response = await admin.create_topics(
                    [NewTopic(t, num_partitions=self.partitions, replication_factor=self.replication_factor)
                     for t in missing]
                )  # fmt: skip
            except KafkaError as exc:
                raise Unavailable("Kafka is unreachable", {"reason": str(exc)}) from exc
            finally:
                await admin.close()
            for topic, code, *rest in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise Unavailable(f"cannot create Kafka topic {topic!r}", {"code": code, "reason": rest})
            self._known_topics.update(missing)

    async def publish_batch(self, messages: Sequence[Outgoing]) -> list[str]:
        """Queue the whole batch, then wait for every acknowledgement; per-partition order is kept."""
        if not messages:
            return []
        await self.ensure_topics({m.topic for m in messages})
        producer = await self._ready_producer()
        now = datetime.now(UTC).isoformat()
        futures = []
        try:
            for m in messages:
                headers = {**m.headers, ID_HEADER: m.message_id, CREATED_HEADER: now}
                value, key = _encode(m.payload), m.key.encode()
                futures.append(await producer.send(m.topic, value, key=key, headers=_h(headers)))
        except KafkaError as exc:
            raise Unavailable("Kafka did not accept a message", {"reason": str(exc)}) from exc
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                await self._retire(producer)
                raise Unavailable("Kafka did not acknowledge a message", {"reason": str(result)}) from result
        return [m.message_id for m in messages]

    async def _retire(self, producer: Any) -> None:
        """Replace a producer that lost a batch: the next publish starts a new one (a new producer id).

        A batch that expires unacknowledged (the broker went away) has used up its sequence numbers, so
        after the broker is back the idempotent producer's next batch on that partition leaves a gap:
        the broker answers OutOfOrderSequenceNumber, which stops aiokafka's sender for good, and every
        later publish would fail the same way (a receiver answering 503 until restarted)."""
        async with self._producer_lock:
            if self._producer is not producer:
                return  # another publish retired it already
            self._producer = None
        await finish_within(self.close_timeout, producer.stop(), "a Kafka producer that lost a batch")

    async def _dead_letter(self, record: Any, group: str, attempt: int, error: str) -> None:
        topic = dlq_topic(record.topic)
        await self.ensure_topics([topic])
        producer = await self._ready_producer()
        headers = list(record.headers or ()) + _h(
            {
                "agiflow-error": error,
                "agiflow-attempts": str(attempt),
                "agiflow-group": group,
                "agiflow-source": f"{record.topic}/{record.partition}/{record.offset}",
            }
        )
        await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)

    def consume(
        self, topics: Sequence[str], group: str, *, max_in_flight: int = 1, member: str | None = None
    ) -> Consumer:
        return _KafkaConsumer(self, topics, group, max_in_flight, member)


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def _h(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in headers.items()]


def _message(record: Any, attempt: int) -> Message:
    """Raises ``ValueError`` for a value that is not a JSON object (a foreign producer's record)."""
    headers = {k: v.decode(errors="replace") for k, v in record.headers or ()}
    payload = json.loads(record.value) if record.value is not None else None
    if not isinstance(payload, dict):
        raise ValueError("the message value is not a JSON object")
    created = headers.get(CREATED_HEADER)
    return Message(
        id=headers.get(ID_HEADER) or f"{record.topic}/{record.partition}/{record.offset}",
        topic=record.topic,
        key=record.key.decode(errors="replace") if record.key is not None else "",
        payload=payload,
        headers={k: v for k, v in headers.items() if k not in _SYSTEM_HEADERS},
        attempt=attempt,
        created_at=datetime.fromisoformat(created) if created else datetime.fromtimestamp(record.timestamp / 1000, UTC),
    )


class _Partition:
    """One assigned partition: unsettled offsets in fetch order, and which keys are busy."""

    def __init__(self, tp: TopicPartition) -> None:
        self.tp = tp
        self.unsettled: deque[int] = deque()
        self.settled: set[int] = set()
        self.commit_target: int | None = None  # next offset to commit, once everything before is settled
        self.committed: int | None = None
        self.busy_keys: set[bytes] = set()
        self.waiting: dict[bytes, deque[_KafkaDelivery]] = {}
        self.timers: set[asyncio.TimerHandle] = set()
        self.in_flight = 0
        self.revoked = False

    def settle(self, offset: int) -> None:
        self.settled.add(offset)
        while self.unsettled and self.unsettled[0] in self.settled:
            done = self.unsettled.popleft()
            self.settled.discard(done)
            self.commit_target = done + 1

    @property
    def buffered(self) -> int:
        return sum(len(q) for q in self.waiting.values()) + len(self.timers)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: _KafkaConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._consumer._revoke(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._consumer._assign(assigned)


class _KafkaConsumer(Consumer):
    def __init__(
        self, bus: KafkaBus, topics: Sequence[str], group: str, max_in_flight: int, member: str | None
    ) -> None:
        super().__init__(topics, group, max_in_flight, member)
        self._bus = bus
        self._kafka: Any = None
        self._pump_task: asyncio.Task[None] | None = None
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._ready: deque[_KafkaDelivery] = deque()
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._assigned = asyncio.Event()
        self._settlement = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closed = False

    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            if self._closed:
                raise RuntimeError("this consumer is closed")
            bus = self._bus
            await bus.ensure_topics(self.topics)
            self._kafka = AIOKafkaConsumer(
                bootstrap_servers=bus.bootstrap_servers,
                client_id=bus.client_id,
                group_id=self.group,
                group_instance_id=self.member,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # a new group starts from the retained history, as on Postgres
                request_timeout_ms=bus.request_timeout_ms,
                session_timeout_ms=bus.session_timeout_ms,
                heartbeat_interval_ms=bus.heartbeat_interval_ms,
                **bus.client_options,
            )
            self._kafka.subscribe(list(self.topics), listener=_Rebalance(self))
            try:
                await self._kafka.start()
            except KafkaError as exc:
                await finish_within(bus.close_timeout, self._kafka.stop(), f"Kafka consumer of group {self.group}")
                raise Unavailable("Kafka is unreachable", {"reason": str(exc)}) from exc
            bus._consumers.add(self)
            self._pump_task = asyncio.create_task(self._pump(), name=f"agiflow-kafka-pump-{self.group}")
            self._started = True
        try:
            await asyncio.wait_for(self._assigned.wait(), timeout=bus.join_timeout)
        except TimeoutError:
            await self.close()
            raise Unavailable(f"could not join consumer group {self.group!r}") from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        for part in self._partitions.values():
            self._drop(part)
        self._partitions.clear()
        self._ready.clear()
        if self._kafka is not None:  # leaves the group; nothing is committed for unsettled messages
            await finish_within(self._bus.close_timeout, self._kafka.stop(), f"Kafka consumer of group {self.group}")
        self._bus._consumers.discard(self)

    async def __anext__(self) -> Delivery:
        await self.start()
        while True:
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            if self._in_flight < self.max_in_flight and self._ready:
                delivery = self._ready.popleft()
                if delivery.partition.revoked:
                    continue
                self._in_flight += 1
                delivery.partition.in_flight += 1
                if delivery.undecodable is not None:
                    with contextlib.suppress(Exception):  # dead() schedules a redelivery if the DLQ is down
                        await delivery.dead(f"undecodable message: {delivery.undecodable}")
                    continue
                return delivery
            await self._wake.wait()

    # -- fetching -------------------------------------------------------------------------------

    def _buffered(self) -> int:
        return len(self._ready) + sum(p.buffered for p in self._partitions.values())

    async def _pump(self) -> None:
        kafka = self._kafka
        while not self._closed:
            try:
                room = self._bus.buffer_size - self._buffered()
                assigned = kafka.assignment()
                if room <= 0:
                    kafka.pause(*assigned)
                elif kafka.paused():
                    kafka.resume(*kafka.paused())
                # Called even while paused: it is what tells aiokafka this member is alive and polling.
                batches = await kafka.getmany(timeout_ms=500, max_records=max(1, room))
            except asyncio.CancelledError:
                raise
            except Exception:
                if not self._bus.health.is_down:  # an outage is logged once, by the bus's health
                    log.warning("Kafka consumer in group %s failed to fetch; retrying", self.group, exc_info=True)
                await asyncio.sleep(1)
                continue
            for tp, records in batches.items():
                part = self._partitions.get(tp)
                if part is None:  # revoked since the fetch
                    continue
                for record in records:
                    self._admit(part, record)
            if batches:
                self._wake.set()

    def _admit(self, part: _Partition, record: ConsumerRecord[Any, Any]) -> None:
        part.unsettled.append(record.offset)
        delivery = _KafkaDelivery(self, part, record, 1)
        key = record.key
        if key is None:
            self._ready.append(delivery)
        elif key in part.busy_keys:
            part.waiting.setdefault(key, deque()).append(delivery)
        else:
            part.busy_keys.add(key)
            self._ready.append(delivery)

    # -- settling -------------------------------------------------------------------------------

    async def _settled(
        self, delivery: _KafkaDelivery, *, redeliver_after: float | None = None, next_attempt: int | None = None
    ) -> None:
        part = delivery.partition
        self._in_flight -= 1
        part.in_flight -= 1
        self._wake.set()
        self._settlement.set()
        if part.revoked:
            return
        if redeliver_after is not None:  # the key stays busy, the offset unsettled
            attempt = delivery.message_attempt + 1 if next_attempt is None else next_attempt
            again = _KafkaDelivery(self, part, delivery.record, attempt)
            handle = asyncio.get_running_loop().call_later(redeliver_after, self._redeliver, again)
            part.timers.add(handle)
            again.timer = handle
            return
        key = delivery.record.key
        if key is not None:
            queue = part.waiting.get(key)
            if queue:
                self._ready.appendleft(queue.popleft())  # older than anything else ready
                if not queue:
                    del part.waiting[key]
            else:
                part.busy_keys.discard(key)
        part.settle(delivery.record.offset)
        await self._commit(part)

    def _redeliver(self, delivery: _KafkaDelivery) -> None:
        part = delivery.partition
        if delivery.timer is not None:
            part.timers.discard(delivery.timer)
        if part.revoked or self._closed:
            return
        self._ready.appendleft(delivery)
        self._wake.set()

    async def _commit(self, part: _Partition) -> None:
        async with self._commit_lock:  # one commit at a time, always the newest target: offsets never go back
            target = part.commit_target
            if part.revoked or target is None or (part.committed is not None and part.committed >= target):
                return
            try:
                async with asyncio.timeout(self._bus.commit_timeout):
                    await self._kafka.commit({part.tp: target})
                part.committed = target
            except Exception as exc:  # a later commit covers it; failing that, the message is redelivered
                if not self._bus.health.is_down:
                    log.warning("commit of %s@%s in group %s failed: %r", part.tp, target, self.group, exc)

    # -- rebalancing ----------------------------------------------------------------------------

    def _assign(self, assigned: set[TopicPartition]) -> None:
        for tp in assigned:
            self._partitions[tp] = _Partition(tp)
        self._assigned.set()
        self._wake.set()

    async def _revoke(self, revoked: set[TopicPartition]) -> None:
        parts = [self._partitions[tp] for tp in revoked if tp in self._partitions]
        deadline = time.monotonic() + self._bus.revoke_grace
        # Let running handlers settle and commit while this member still owns their partitions.
        while not self._closed and any(p.in_flight for p in parts):
            self._settlement.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settlement.wait(), timeout=deadline - time.monotonic())
            if time.monotonic() >= deadline:
                break
        for part in parts:
            self._drop(part)
            self._partitions.pop(part.tp, None)
        self._ready = deque(d for d in self._ready if not d.partition.revoked)
        self._wake.set()

    def _drop(self, part: _Partition) -> None:
        part.revoked = True
        for handle in part.timers:
            handle.cancel()
        part.timers.clear()
        part.waiting.clear()


class _KafkaDelivery(Delivery):
    def __init__(self, consumer: _KafkaConsumer, partition: _Partition, record: Any, attempt: int) -> None:
        self.partition = partition
        self.record = record
        self.message_attempt = attempt
        self.timer: asyncio.TimerHandle | None = None
        self.undecodable: str | None = None
        self._consumer = consumer
        self._settled_flag = False
        try:
            self.message = _message(record, attempt)
        except ValueError as exc:
            self.undecodable = str(exc)
            self.message = Message(
                id=f"{record.topic}/{record.partition}/{record.offset}",
                topic=record.topic,
                key="",
                payload={},
                headers={},
                attempt=attempt,
                created_at=datetime.now(UTC),
            )

    @property
    def settled(self) -> bool:
        return self._settled_flag

    def _claim_settlement(self) -> None:
        if self._settled_flag:
            raise RuntimeError(f"message {self.message.id} is already settled")
        self._settled_flag = True

    async def ack(self) -> None:
        self._claim_settlement()
        await self._consumer._settled(self)

    async def retry(self, error: str) -> None:
        policy = self._consumer._bus.retry
        if policy.exhausted(self.message_attempt):
            await self.dead(f"gave up after {self.message_attempt} attempts: {error}")
            return
        self._claim_settlement()
        await self._consumer._settled(self, redeliver_after=policy.backoff(self.message_attempt))

    async def dead(self, error: str) -> None:
        if self._settled_flag:
            raise RuntimeError(f"message {self.message.id} is already settled")
        consumer = self._consumer
        try:
            await consumer._bus._dead_letter(self.record, consumer.group, self.message_attempt, error)
        except Exception:
            # The DLQ is unreachable: free the slot and hand the message out again later, same attempt,
            # so the handler's next failure comes straight back here.
            self._claim_settlement()
            delay = consumer._bus.retry.backoff(self.message_attempt)
            await consumer._settled(self, redeliver_after=delay, next_attempt=self.message_attempt)
            raise
        self._claim_settlement()
        await consumer._settled(self)

    async def extend(self) -> None:
        """Nothing to extend: membership is kept by the background poll, not by a per-message lease."""
