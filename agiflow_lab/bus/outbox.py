"""The transactional outbox: how services publish.

A service writes its message in the same transaction as the state change it announces, so the two
commit or roll back together: a job that was accepted always has its ``jobs`` message, a rolled-back
request never leaks one, and nothing depends on the broker being up at that moment. ``OutboxRelay``
then moves committed rows to the bus, whichever backend that is, so services never know which.

Order: the relay publishes in id order and deletes a batch only after the bus acknowledged all of it;
a failed batch is retried whole (a re-send keeps its message id, so consumers drop the duplicate).
Ids are assigned at insert, not commit, so rows can become visible out of id order; rows are deleted
individually rather than behind a cursor, so a late commit is still sent. Per-key order holds for
state changes that serialise on their row (one job's transitions lock the job row), which is what
per-key order is for.

Only one relay in the whole deployment sends at a time (a session advisory lock), so that two API
replicas cannot interleave one key's messages; the others stand by and take over when its database
session ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from agiflow_lab.bus.base import Bus, Outgoing, new_message_id
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.db.listen import ListenConn, Listener

log = logging.getLogger(__name__)

CHANNEL = "agiflow_outbox"
_RELAY_LOCK = (0x41674255, 1)  # (class, object) for pg_try_advisory_lock; shared with no other lock

_ENQUEUE = """
WITH row AS (
    INSERT INTO control.bus_outbox (message_id, topic, key, payload, headers) VALUES (%s, %s, %s, %s, %s)
)
SELECT pg_notify(%s, '')"""


async def enqueue(
    conn: Conn, topic: str, key: str, payload: dict[str, Any], *, headers: Mapping[str, str] | None = None
) -> str:
    """Write a message in the caller's transaction; returns its id (the consumers' idempotency key)."""
    message_id = new_message_id()
    await conn.execute(_ENQUEUE, (message_id, topic, key, Jsonb(payload), Jsonb(dict(headers or {})), CHANNEL))
    return message_id


class OutboxRelay:
    """Drains committed outbox rows to the bus: woken by NOTIFY, with a slow poll as a safety net.

    The relay follows the outbox channel with the shared ``Listener``; its connection also holds the
    relay lock, so every reconnect starts as a follower again and tries to take the lock.
    """

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        publish_timeout: float = 60.0,
    ) -> None:
        self.db = db
        self.bus = bus
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.publish_timeout = publish_timeout
        self.leader = False
        self.last_error: str | None = None
        self._conn: ListenConn | None = None
        self._stopping = False
        self._listener = Listener(
            db, CHANNEL, on_connect=self._connected, on_notify=self._notified, on_idle=self._relay,
            on_lost=self._disconnected, idle=poll_interval, name="outbox relay",
        )  # fmt: skip

    def start(self) -> None:
        self._stopping = False
        self._listener.start()

    async def stop(self) -> None:
        # The flag ends a publish back-off even if the cancel is swallowed (Python 3.11 asyncio.wait_for in
        # psycopg_pool, reached through a Postgres bus's publish).
        self._stopping = True
        await self._listener.stop()

    async def __aenter__(self) -> OutboxRelay:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _connected(self, conn: ListenConn) -> None:
        # The session advisory lock lives and dies with this connection, which also LISTENs.
        self._conn = conn
        self.leader = False
        await self._relay()

    async def _notified(self, _payload: str) -> None:
        await self._relay()

    def _disconnected(self) -> None:
        self._conn = None
        self.leader = False

    async def _relay(self) -> None:
        """Take the relay lock if it is free, then send batches until the outbox is empty.

        A bus failure keeps the rows and backs off here; a database failure propagates, so the listener
        reconnects (the lock is gone with the old session) and starts again."""
        conn = self._conn
        if conn is None:
            return
        if not self.leader:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok", _RELAY_LOCK)
            row = await cur.fetchone()
            self.leader = bool(row and row["ok"])
        failures = 0
        while self.leader and not self._stopping:
            rows = await self._next_batch(conn)
            if not rows:
                return
            batch = [Outgoing(r["topic"], r["key"], r["payload"], str(r["message_id"]), r["headers"]) for r in rows]
            try:
                async with asyncio.timeout(self.publish_timeout):
                    await self.bus.publish_batch(batch)
            except Exception as exc:  # the bus is down: keep the rows, back off, try again
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(self.backoff_max, self.backoff_base * 2 ** (failures - 1))
                # Once per outage: the first failure, unless the bus's health has already reported it.
                quiet = failures > 1 or self.bus.health.is_down
                log.log(logging.DEBUG if quiet else logging.WARNING,
                        "outbox relay cannot publish (%s); retrying in %.1fs", self.last_error, delay)  # fmt: skip
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.last_error = None
            await conn.execute("DELETE FROM control.bus_outbox WHERE id = ANY(%s)", ([r["id"] for r in rows],))
            if len(rows) < self.batch_size:
                return

    async def _next_batch(self, conn: ListenConn) -> list[dict[str, Any]]:
        cur = await conn.execute(
            """SELECT id, message_id, topic, key, payload, headers FROM control.bus_outbox
                ORDER BY id LIMIT %s""",
            (self.batch_size,),
        )
        rows: list[dict[str, Any]] = await cur.fetchall()
        return rows
