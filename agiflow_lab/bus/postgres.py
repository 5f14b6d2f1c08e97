"""The embedded default backend: a durable queue in the application's own Postgres.

Fan-out to consumer groups is materialised at publish time: one ``bus_deliveries`` row per group
subscribed to the topic. A per-group cursor would be smaller, but a cursor cannot express "message 7
is waiting for a retry while 8 and 9 are done", nor a dead letter for one group only; a row per
(message, group) makes attempts, leases and dead letters plain columns. A group that subscribes
later is backfilled from the retained messages; publishing holds a shared advisory lock on the topic
and subscribing an exclusive one, so no message slips between the backfill and the first fan-out.

Claims use ``FOR UPDATE SKIP LOCKED`` and set a lease. A consumer's heartbeat extends the leases of
everything it holds, so a job of any length keeps its claim while its process lives, and a process
that dies loses it within one lease. Expired leases are claimable again; a lease that expires on the
last attempt dead-letters the message, so a message that kills its consumer cannot loop forever.

Per-key order: a delivery is claimable only when no earlier delivery with the same group, topic and
key is pending or claimed. Both the claim scan and that check read partial indexes holding only live
rows, so finished history costs nothing; the cost is one index probe per live message held back
behind its key. Publishing, settling and re-queueing ``NOTIFY agiflow_bus`` with the topic, and each
bus keeps one ``LISTEN`` connection that wakes its idle consumers at once; a slow poll (and a wake at
the next retry or lease expiry) covers a notification lost to a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from agiflow_lab.bus.base import Bus, Consumer, Delivery, Message, Outgoing, RetryPolicy
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.db.listen import ListenConn, Listener
from agiflow_lab.errors import InvalidInput, NotFound, Unavailable

if TYPE_CHECKING:
    from agiflow_lab.config import Settings

log = logging.getLogger(__name__)

CHANNEL = "agiflow_bus"
_TOPIC_LOCK_CLASS = 0x41674255  # advisory lock namespace (two-int form) for publish/subscribe per topic

_LOCK_TOPICS_SHARED = """
SELECT pg_advisory_xact_lock_shared(%s::int, hashtext(t)) FROM unnest(%s::text[]) AS t ORDER BY t"""

_PUBLISH = """
WITH m AS (
    INSERT INTO control.bus_messages (id, topic, key, payload, headers)
    SELECT id, topic, key, payload, headers
      FROM unnest(%(ids)s::uuid[], %(topics)s::text[], %(keys)s::text[], %(payloads)s::jsonb[],
                  %(headers)s::jsonb[]) WITH ORDINALITY AS u(id, topic, key, payload, headers, n)
     ORDER BY n
        ON CONFLICT (id) DO NOTHING
    RETURNING id, seq, topic, key
), d AS (
    INSERT INTO control.bus_deliveries (message_id, group_name, seq, topic, key)
    SELECT m.id, s.group_name, m.seq, m.topic, m.key
      FROM m JOIN control.bus_subscriptions s ON s.topic = m.topic
)
SELECT pg_notify(%(channel)s, t.topic) FROM (SELECT DISTINCT topic FROM m) AS t"""

_CLAIM = """
WITH c AS (
    SELECT d.message_id
      FROM control.bus_deliveries d
     WHERE d.group_name = %(group)s
       AND d.state IN ('pending', 'claimed')
       AND d.topic = ANY(%(topics)s)
       AND CASE WHEN d.state = 'pending' THEN d.available_at <= now()
                ELSE d.lease_until <= now() AND d.attempts < %(max_attempts)s END
       AND NOT EXISTS (
           SELECT 1 FROM control.bus_deliveries e
            WHERE e.group_name = d.group_name AND e.topic = d.topic AND e.key = d.key
              AND e.seq < d.seq AND e.state IN ('pending', 'claimed'))
     ORDER BY d.seq
     LIMIT %(limit)s
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE control.bus_deliveries d
   SET state = 'claimed', attempts = d.attempts + 1, claim_token = gen_random_uuid(),
       lease_until = now() + make_interval(secs => %(lease)s), claimed_by = %(consumer)s, updated_at = now()
  FROM c, control.bus_messages m
 WHERE d.message_id = c.message_id AND d.group_name = %(group)s AND m.id = d.message_id
RETURNING d.message_id, d.seq, d.attempts, d.claim_token, m.topic, m.key, m.payload, m.headers, m.created_at"""

_EXPIRE_LAST_ATTEMPTS = """
UPDATE control.bus_deliveries
   SET state = 'dead', lease_until = NULL, claim_token = NULL, updated_at = now(),
       last_error = 'lease expired on attempt ' || attempts || ': the consumer died or stalled'
 WHERE group_name = %(group)s AND state = 'claimed' AND topic = ANY(%(topics)s)
   AND lease_until <= now() AND attempts >= %(max_attempts)s"""

_NEXT_DUE = """
SELECT extract(epoch FROM min(t) - now())::float8 AS wait FROM (
    SELECT min(available_at) AS t FROM control.bus_deliveries
     WHERE group_name = %(group)s AND state = 'pending' AND topic = ANY(%(topics)s) AND available_at > now()
    UNION ALL
    SELECT min(lease_until) FROM control.bus_deliveries
     WHERE group_name = %(group)s AND state = 'claimed' AND topic = ANY(%(topics)s) AND lease_until > now()
) AS due"""

# Settling to done or dead frees the key: wake the group if a later message of the key was waiting.
_FINISH = """
WITH s AS (
    UPDATE control.bus_deliveries
       SET state = %(state)s, lease_until = NULL, claim_token = NULL, updated_at = now(),
           last_error = coalesce(%(error)s, last_error)
     WHERE message_id = %(id)s AND group_name = %(group)s AND claim_token = %(token)s AND state = 'claimed'
    RETURNING topic, key, seq
), n AS (
    SELECT pg_notify(%(channel)s, s.topic) FROM s
     WHERE EXISTS (SELECT 1 FROM control.bus_deliveries e
                    WHERE e.group_name = %(group)s AND e.topic = s.topic AND e.key = s.key
                      AND e.seq > s.seq AND e.state = 'pending')
)
SELECT (SELECT count(*) FROM s) AS settled, (SELECT count(*) FROM n) AS woke"""

_RETRY_LATER = """
UPDATE control.bus_deliveries
   SET state = 'pending', available_at = now() + make_interval(secs => %(delay)s), lease_until = NULL,
       claim_token = NULL, last_error = %(error)s, updated_at = now()
 WHERE message_id = %(id)s AND group_name = %(group)s AND claim_token = %(token)s AND state = 'claimed'"""

_EXTEND = """
UPDATE control.bus_deliveries SET lease_until = now() + make_interval(secs => %(lease)s), updated_at = now()
 WHERE group_name = %(group)s AND message_id = ANY(%(ids)s::uuid[]) AND claim_token = ANY(%(tokens)s::uuid[])
   AND state = 'claimed'"""

# Claims never handed to the caller go back untouched (the attempt is not counted).
_RELEASE = """
WITH r AS (
    UPDATE control.bus_deliveries
       SET state = 'pending', attempts = attempts - 1, lease_until = NULL, claim_token = NULL,
           available_at = now(), updated_at = now()
     WHERE group_name = %(group)s AND message_id = ANY(%(ids)s::uuid[]) AND claim_token = ANY(%(tokens)s::uuid[])
       AND state = 'claimed'
    RETURNING topic
)
SELECT pg_notify(%(channel)s, t.topic) FROM (SELECT DISTINCT topic FROM r) AS t"""

_DEAD_LETTERS = """
SELECT d.group_name, d.attempts, d.last_error, d.updated_at AS failed_at,
       m.id, m.topic, m.key, m.payload, m.headers, m.created_at
  FROM control.bus_deliveries d JOIN control.bus_messages m ON m.id = d.message_id
 WHERE d.state = 'dead'
   AND (%(topic)s::text IS NULL OR d.topic = %(topic)s)
   AND (%(group)s::text IS NULL OR d.group_name = %(group)s)
 ORDER BY d.updated_at DESC, d.seq DESC
 LIMIT %(limit)s"""

_REQUEUE = """
WITH r AS (
    UPDATE control.bus_deliveries
       SET state = 'pending', attempts = 0, available_at = now(), updated_at = now()
     WHERE message_id = %(id)s AND group_name = %(group)s AND state = 'dead'
    RETURNING topic
)
SELECT pg_notify(%(channel)s, r.topic) FROM r"""

# A message goes when every group has settled it (done; dead too if asked) and the last settlement is
# older than the retention, not merely the message: one retried for days is kept as long as one acked
# at once. FOR UPDATE SKIP LOCKED on the message leaves alone one a new group's backfill is inserting a
# delivery for (its foreign key check holds a share lock on the message), so nothing slips away.
_PURGE_SETTLED = """
WITH doomed AS (
    SELECT m.id FROM control.bus_messages m
     WHERE m.created_at < now() - %(age)s
       AND NOT EXISTS (
           SELECT 1 FROM control.bus_deliveries d
            WHERE d.message_id = m.id
              AND (d.state <> ALL(%(settled)s::text[]) OR d.updated_at >= now() - %(age)s))
     ORDER BY m.created_at
     LIMIT %(limit)s
       FOR UPDATE OF m SKIP LOCKED
)
DELETE FROM control.bus_messages WHERE id IN (SELECT id FROM doomed)"""


def _uuid(message_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(message_id)
    except ValueError:
        raise InvalidInput(f"{message_id!r} is not a message id", {"field": "message_id"}) from None


def _raise_if_cancelled() -> None:
    """Honour a cancel that psycopg_pool swallowed.

    The pool waits for a free connection with ``asyncio.wait_for``, which on Python 3.11 returns the
    connection instead of raising when the cancel and the hand-over coincide. The task's cancel count
    still says it was cancelled; without this check a cancelled consumer loop would run on and the
    code awaiting it would hang.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _message(row: dict[str, Any], attempt: int) -> Message:
    return Message(
        id=str(row["id"] if "id" in row else row["message_id"]),
        topic=row["topic"],
        key=row["key"],
        payload=row["payload"],
        headers=row["headers"],
        attempt=attempt,
        created_at=row["created_at"],
    )


class _Listener:
    """One LISTEN connection per bus, fanning notifications out to the consumers of each topic."""

    def __init__(self, db: Database) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listener = Listener(db, CHANNEL, on_connect=self._resync, on_notify=self._notified, name="bus listener")
        self.connected = self._listener.connected

    def start(self) -> None:
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    def register(self, topics: Iterable[str], event: asyncio.Event) -> None:
        for topic in topics:
            self._waiters[topic].add(event)

    def unregister(self, topics: Iterable[str], event: asyncio.Event) -> None:
        for topic in topics:
            self._waiters[topic].discard(event)

    async def _resync(self, _conn: ListenConn) -> None:
        self._wake(None)  # whatever was published while we were not listening

    async def _notified(self, topic: str) -> None:
        self._wake(topic)

    def _wake(self, topic: str | None) -> None:
        groups = self._waiters.values() if topic is None else [self._waiters.get(topic, set())]
        for events in groups:
            for event in events:
                event.set()


@dataclass(frozen=True)
class DeadLetter:
    message: Message
    group: str
    error: str | None
    failed_at: datetime


class PostgresBus(Bus):
    @classmethod
    def from_settings(cls, settings: Settings, db: Database, *, retry: RetryPolicy | None = None) -> PostgresBus:
        return cls(db, retry=retry, lease_seconds=settings.bus_lease_seconds)

    def __init__(
        self,
        db: Database,
        *,
        retry: RetryPolicy | None = None,
        lease_seconds: float = 30.0,
        poll_interval: float = 1.0,
        heartbeat: bool = True,
    ) -> None:
        self.db = db
        self.retry = retry or RetryPolicy()
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.heartbeat = heartbeat
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._listener = _Listener(db)
        self._consumers: set[_PgConsumer] = set()
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        self._listener.start()
        try:
            await asyncio.wait_for(self._listener.connected.wait(), timeout=30)
        except TimeoutError:
            await self._listener.stop()
            raise Unavailable("the bus could not LISTEN on the database") from None
        self._started = True

    async def close(self) -> None:
        for consumer in list(self._consumers):
            await consumer.close()
        await self._listener.stop()
        self._started = False

    async def publish_batch(self, messages: Sequence[Outgoing]) -> list[str]:
        """One transaction for the batch; re-publishing a message id is a no-op (the outbox relies on it)."""
        if not messages:
            return []
        params = {
            "ids": [_uuid(m.message_id) for m in messages],
            "topics": [m.topic for m in messages],
            "keys": [m.key for m in messages],
            "payloads": [Jsonb(m.payload) for m in messages],
            "headers": [Jsonb(dict(m.headers)) for m in messages],
            "channel": CHANNEL,
        }
        async with self.db.transaction() as conn:
            await conn.execute(_LOCK_TOPICS_SHARED, (_TOPIC_LOCK_CLASS, sorted({m.topic for m in messages})))
            await conn.execute(_PUBLISH, params)
        return [m.message_id for m in messages]

    def consume(
        self, topics: Sequence[str], group: str, *, max_in_flight: int = 1, member: str | None = None
    ) -> Consumer:
        return _PgConsumer(self, topics, group, max_in_flight, member)

    async def subscribe(self, topics: Sequence[str], group: str) -> None:
        """Register ``group`` on ``topics`` (idempotent), backfilling retained messages the first time."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT topic FROM control.bus_subscriptions WHERE group_name = %s AND topic = ANY(%s)",
                (group, list(topics)),
            )
            missing = sorted(set(topics) - {row["topic"] for row in await cur.fetchall()})
            for topic in missing:
                await _subscribe(conn, topic, group)

    async def dead_letters(
        self, topic: str | None = None, group: str | None = None, *, limit: int = 100
    ) -> list[DeadLetter]:
        return await dead_letters(self.db, topic, group, limit=limit)

    async def requeue(self, message_id: str, group: str) -> None:
        await requeue(self.db, message_id, group)


async def _subscribe(conn: Conn, topic: str, group: str) -> None:
    async with conn.transaction():
        # Exclusive against publishers: every publish either committed before the backfill below
        # (and is copied by it) or runs after this commit (and sees the subscription).
        await conn.execute("SELECT pg_advisory_xact_lock(%s::int, hashtext(%s))", (_TOPIC_LOCK_CLASS, topic))
        cur = await conn.execute(
            "INSERT INTO control.bus_subscriptions (topic, group_name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (topic, group),
        )
        if cur.rowcount:
            await conn.execute(
                """INSERT INTO control.bus_deliveries (message_id, group_name, seq, topic, key)
                   SELECT id, %s, seq, topic, key FROM control.bus_messages WHERE topic = %s
                   ON CONFLICT DO NOTHING""",
                (group, topic),
            )
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, topic))


class _PgConsumer(Consumer):
    def __init__(
        self, bus: PostgresBus, topics: Sequence[str], group: str, max_in_flight: int, member: str | None
    ) -> None:
        super().__init__(topics, group, max_in_flight, member)
        self._bus = bus
        self.name = f"{bus.name}/{uuid.uuid4().hex[:8]}"
        self._unclaimed: deque[_PgDelivery] = deque()  # claimed but not yet handed out
        self._held: dict[uuid.UUID, _PgDelivery] = {}  # claim token -> every unsettled claim (incl. above)
        self._wake = asyncio.Event()
        self._started = False
        self._closed = False
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def _params(self) -> dict[str, Any]:
        return {"group": self.group, "topics": list(self.topics), "max_attempts": self._bus.retry.max_attempts}

    async def start(self) -> None:
        if self._started:
            return
        if self._closed:
            raise RuntimeError("this consumer is closed")
        if not self._bus._started:
            raise RuntimeError("start the bus before consuming")
        await self._bus.subscribe(self.topics, self.group)
        self._bus._listener.register(self.topics, self._wake)
        self._bus._consumers.add(self)
        if self._bus.heartbeat:
            self._heartbeat = asyncio.create_task(self._beat(), name=f"agiflow-bus-heartbeat-{self.name}")
        self._started = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._bus._listener.unregister(self.topics, self._wake)
        self._bus._consumers.discard(self)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self._release_unclaimed()

    async def __anext__(self) -> Delivery:
        await self.start()
        while True:
            if self._closed:
                await self._release_unclaimed()
                raise StopAsyncIteration
            _raise_if_cancelled()
            if self._unclaimed:
                return self._unclaimed.popleft()
            timeout: float | None = None  # at capacity: only a settlement (or close) can help
            self._wake.clear()  # before the query, so a NOTIFY during it is not lost
            free = self.max_in_flight - len(self._held)
            if free > 0:
                try:
                    if await self._claim(free):
                        continue
                    timeout = await self._idle_timeout()
                except (psycopg.Error, Unavailable):
                    log.warning("consumer %s cannot reach the database; retrying", self.name, exc_info=True)
                    timeout = self._bus.poll_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _claim(self, limit: int) -> int:
        params = self._params | {"limit": limit, "lease": self._bus.lease_seconds, "consumer": self.name}
        async with self._bus.db.connection() as conn:
            cur = await conn.execute(_CLAIM, params)
            rows = sorted(await cur.fetchall(), key=lambda r: r["seq"])
        for row in rows:
            delivery = _PgDelivery(self, _message(row, row["attempts"]), row["claim_token"])
            self._held[delivery.token] = delivery
            self._unclaimed.append(delivery)
        return len(rows)

    async def _idle_timeout(self) -> float:
        """Sleep until the next retry or lease expiry is due, but never longer than the poll interval."""
        async with self._bus.db.connection() as conn:
            await conn.execute(_EXPIRE_LAST_ATTEMPTS, self._params)
            cur = await conn.execute(_NEXT_DUE, self._params)
            row = await cur.fetchone()
        due = row["wait"] if row else None
        return self._bus.poll_interval if due is None else max(0.01, min(self._bus.poll_interval, due))

    async def _beat(self) -> None:
        # The flag, not only cancel(), ends the loop: a cancel can be swallowed (see _raise_if_cancelled).
        while not self._closed:
            await asyncio.sleep(self._bus.lease_seconds / 3)
            if not self._held or self._closed:
                continue
            try:
                await self._extend(list(self._held.values()))
            except Exception:
                log.warning("consumer %s could not extend its leases", self.name, exc_info=True)

    async def _extend(self, deliveries: list[_PgDelivery]) -> None:
        params = {
            "group": self.group,
            "lease": self._bus.lease_seconds,
            "ids": [_uuid(d.message.id) for d in deliveries],
            "tokens": [d.token for d in deliveries],
        }
        async with self._bus.db.connection() as conn:
            await conn.execute(_EXTEND, params)

    async def _release_unclaimed(self) -> None:
        if not self._unclaimed:
            return
        pending = list(self._unclaimed)
        self._unclaimed.clear()
        for delivery in pending:
            self._held.pop(delivery.token, None)
        params = {
            "group": self.group,
            "ids": [_uuid(d.message.id) for d in pending],
            "tokens": [d.token for d in pending],
            "channel": CHANNEL,
        }
        try:
            async with self._bus.db.connection() as conn:
                await conn.execute(_RELEASE, params)
        except Exception:  # their leases expire instead
            log.warning("consumer %s could not release %d claims", self.name, len(pending), exc_info=True)

    def _forget(self, delivery: _PgDelivery) -> None:
        self._held.pop(delivery.token, None)
        self._wake.set()


class _PgDelivery(Delivery):
    def __init__(self, consumer: _PgConsumer, message: Message, token: uuid.UUID) -> None:
        self.message = message
        self.token = token
        self._consumer = consumer
        self._settled = False

    @property
    def settled(self) -> bool:
        return self._settled

    @property
    def _key(self) -> dict[str, Any]:
        return {"id": _uuid(self.message.id), "group": self._consumer.group, "token": self.token}

    async def ack(self) -> None:
        await self._finish("done", None)

    async def dead(self, error: str) -> None:
        await self._finish("dead", error)

    async def retry(self, error: str) -> None:
        policy = self._consumer._bus.retry
        if policy.exhausted(self.message.attempt):
            await self._finish("dead", f"gave up after {self.message.attempt} attempts: {error}")
            return
        params = self._key | {"delay": policy.backoff(self.message.attempt), "error": error}
        await self._settle(_RETRY_LATER, params)

    async def extend(self) -> None:
        if self._settled:
            raise RuntimeError(f"message {self.message.id} is already settled")
        await self._consumer._extend([self])

    async def _finish(self, state: str, error: str | None) -> None:
        await self._settle(_FINISH, self._key | {"state": state, "error": error, "channel": CHANNEL})

    async def _settle(self, sql: str, params: dict[str, Any]) -> None:
        if self._settled:
            raise RuntimeError(f"message {self.message.id} is already settled")
        try:
            async with self._consumer._bus.db.connection() as conn:
                cur = await conn.execute(sql, params)
                row = await cur.fetchone() if cur.description else None
                updated = row["settled"] if row else cur.rowcount
        finally:
            # Even when the update failed: stop heartbeating it, so the lease expires and it is redelivered.
            self._consumer._forget(self)
        self._settled = True
        if not updated:
            log.warning(
                "lease on message %s (group %s) expired before it was settled; it is redelivered",
                self.message.id,
                self._consumer.group,
            )


async def dead_letters(
    db: Database, topic: str | None = None, group: str | None = None, *, limit: int = 100
) -> list[DeadLetter]:
    """Dead-lettered deliveries, newest first, for an operator to inspect (and maybe re-queue)."""
    async with db.connection() as conn:
        cur = await conn.execute(_DEAD_LETTERS, {"topic": topic, "group": group, "limit": limit})
        rows = await cur.fetchall()
    return [
        DeadLetter(_message(row, row["attempts"]), row["group_name"], row["last_error"], row["failed_at"])
        for row in rows
    ]


async def requeue(db: Database, message_id: str, group: str) -> None:
    """Give a dead letter a fresh set of attempts in ``group`` (the other groups are unaffected)."""
    async with db.connection() as conn:
        cur = await conn.execute(_REQUEUE, {"id": _uuid(message_id), "group": group, "channel": CHANNEL})
        if not await cur.fetchall():
            raise NotFound(
                f"no dead letter {message_id} in group {group!r}", {"message_id": message_id, "group": group}
            )


async def purge_settled(conn: Conn, older_than: timedelta, *, dead_letters: bool, limit: int) -> int:
    """Delete up to ``limit`` messages (their deliveries with them) that every subscribed group settled
    more than ``older_than`` ago. Dead letters are kept for an operator unless ``dead_letters``; pending
    and claimed deliveries always keep their message."""
    settled = ["done", "dead"] if dead_letters else ["done"]
    cur = await conn.execute(_PURGE_SETTLED, {"age": older_than, "settled": settled, "limit": limit})
    return cur.rowcount
