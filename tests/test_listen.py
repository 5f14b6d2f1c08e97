"""The LISTEN helper every follower of a channel uses: delivery, reconnect with resync, outage logs, stop.

Each test gets a fresh database on the session's embedded Postgres; the listening connection is killed
from another connection with ``pg_terminate_backend``, as a database restart or a network cut would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest

from agiflow_lab.db.database import Database
from agiflow_lab.db.listen import ListenConn, Listener
from tests.support.servers import create_database

CHANNEL = "agiflow_test_listen"
GUARD = 60  # a hang shows up as a failure, not as a timed-out session


@pytest.fixture
async def db(pg_server: str) -> AsyncIterator[Database]:
    url = await asyncio.to_thread(create_database, pg_server)
    database = Database(url, min_size=1, max_size=4)
    await database.open()
    async with database.connection() as conn:
        await conn.execute("CREATE TABLE truth (id int PRIMARY KEY, value text NOT NULL)")
        await conn.execute("INSERT INTO truth VALUES (1, 'initial')")
    yield database
    await database.close()


class Follower:
    """What a real follower does: resync from the table on connect, record notifications."""

    def __init__(self, db: Database) -> None:
        self.notes: list[str] = []
        self.resyncs: list[str] = []
        self.pids: list[int] = []
        self.poked = asyncio.Event()
        self.fail_on: str | None = None
        self.listener = Listener(db, CHANNEL, on_notify=self.on_notify, on_connect=self.on_connect,
                                 on_lost=self.on_lost, backoff_base=0.05)  # fmt: skip
        self.lost = 0

    async def on_connect(self, conn: ListenConn) -> None:
        # FOR SHARE waits for a writer that still holds the row, so the resync reads what it committed.
        cur = await conn.execute("SELECT value FROM truth WHERE id = 1 FOR SHARE")
        row = await cur.fetchone()
        assert row is not None
        self.pids.append(conn.info.backend_pid)
        self.resyncs.append(row["value"])
        self.poked.set()

    async def on_notify(self, payload: str) -> None:
        if payload == self.fail_on:
            raise RuntimeError(f"cannot handle {payload}")
        self.notes.append(payload)
        self.poked.set()

    def on_lost(self) -> None:
        self.lost += 1
        self.poked.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(GUARD):
            while not predicate():
                self.poked.clear()
                await self.poked.wait()


async def notify(db: Database, *payloads: str) -> None:
    for payload in payloads:
        async with db.connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


async def test_notifications_are_delivered_in_order_after_a_first_resync(db: Database) -> None:
    follower = Follower(db)
    async with follower.listener:
        await follower.until(lambda: follower.resyncs == ["initial"])
        await notify(db, "a", "b", "c")
        await follower.until(lambda: len(follower.notes) == 3)
    assert follower.notes == ["a", "b", "c"]
    assert follower.resyncs == ["initial"]


async def test_a_killed_connection_reconnects_and_the_resync_catches_what_was_sent_in_the_gap(db: Database) -> None:
    follower = Follower(db)
    async with follower.listener:
        await follower.until(lambda: len(follower.resyncs) == 1)
        async with db.transaction() as conn:
            # The change, its notification and the kill commit together: the listener is gone when the
            # notification goes out, and its resync (FOR SHARE) cannot read the row before the commit.
            await conn.execute("UPDATE truth SET value = 'changed while away' WHERE id = 1")
            await conn.execute("SELECT pg_terminate_backend(%s, 30000)", (follower.pids[0],))
            await conn.execute("SELECT pg_notify(%s, 'sent while away')", (CHANNEL,))
        await follower.until(lambda: len(follower.resyncs) == 2)
        assert follower.resyncs == ["initial", "changed while away"]
        assert follower.pids[1] != follower.pids[0]
        assert follower.lost >= 1
        # Whether "sent while away" arrived depends on how fast the listener came back; the resync is
        # what makes that not matter.
        await notify(db, "after")  # and it follows the channel again
        await follower.until(lambda: "after" in follower.notes)


async def test_a_failing_callback_reconnects_and_resyncs(db: Database) -> None:
    follower = Follower(db)
    follower.fail_on = "poison"
    async with follower.listener:
        await follower.until(lambda: len(follower.resyncs) == 1)
        await notify(db, "poison")
        await follower.until(lambda: len(follower.resyncs) == 2)
        await notify(db, "fine")
        await follower.until(lambda: follower.notes == ["fine"])


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    db: Database, pg_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="agiflow_lab.db.listen")
    follower = Follower(db)
    async with follower.listener:
        await follower.until(lambda: len(follower.resyncs) == 1)
        name = psycopg.conninfo.conninfo_to_dict(db.url)["dbname"]
        async with await psycopg.AsyncConnection.connect(pg_server, autocommit=True) as admin:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute("SELECT pg_terminate_backend(%s, 30000)", (follower.pids[0],))
            await follower.until(lambda: follower.lost >= 4)  # the kill, then refused reconnects ...
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')  # ... then it is back
        await follower.until(lambda: len(follower.resyncs) == 2)
    records = [r for r in caplog.records if r.name == "agiflow_lab.db.listen" and r.levelno >= logging.WARNING]
    assert len(records) == 2, [r.getMessage() for r in records]
    assert "not listening" in records[0].getMessage()
    assert "listening again" in records[1].getMessage()


async def test_stop_is_prompt_while_waiting_for_notifications_and_while_backing_off(db: Database) -> None:
    follower = Follower(db)
    follower.listener.start()
    await follower.until(lambda: len(follower.resyncs) == 1)
    async with asyncio.timeout(GUARD):
        await follower.listener.stop()
    assert not follower.listener.connected.is_set()

    unreachable = Database("postgresql://nobody@127.0.0.1:1/x?connect_timeout=5")
    backing_off = Listener(unreachable, CHANNEL, backoff_base=3600, on_lost=follower.on_lost)
    lost_before = follower.lost
    backing_off.start()
    await follower.until(lambda: follower.lost > lost_before)  # failed once: now in an hour-long backoff
    async with asyncio.timeout(GUARD):
        await backing_off.stop()
