"""The scheduler role: one API replica at a time fires due schedules.

It follows the schedules channel with the shared ``Listener``, whose connection also holds a session
advisory lock (as the outbox relay does): the holder is the leader and runs passes; the others try the lock
every ``follower_poll`` seconds and take over within about that long after the leader's session ends
(a replica killed with SIGKILL included: its connection closes with it). The lock only decides who does the
work: a pass is correct whoever runs it, and two at once still fire each tick once (``ScheduleService``).

The leader sleeps until the earliest tick (the listener's idle timeout is set after every pass), and a
NOTIFY from any replica's edit wakes it to look again: no polling loop of its own.
"""

from __future__ import annotations

import logging
import os
import socket

from agiflow_lab.db.database import Database
from agiflow_lab.db.listen import ListenConn, Listener
from agiflow_lab.schedules.service import ScheduleService
from agiflow_lab.schedules.store import CHANNEL

log = logging.getLogger(__name__)

_SCHEDULER_LOCK = (0x41674255, 2)  # (class, object) for pg_try_advisory_lock; the outbox relay holds (…, 1)
APPLICATION_NAME = f"agiflow scheduler {socket.gethostname()}:{os.getpid()}"[:63]
MIN_WAIT = 0.05  # after a pass that left work due (a schedule another pass held): look again shortly


class Scheduler:
    def __init__(self, db: Database, schedules: ScheduleService, *, follower_poll: float = 1.0) -> None:
        self.schedules = schedules
        self.follower_poll = follower_poll
        self.leader = False
        self._conn: ListenConn | None = None
        self._listener = Listener(
            db, CHANNEL, on_connect=self._connected, on_notify=self._notified, on_idle=self._pass,
            on_lost=self._disconnected, idle=follower_poll, name="scheduler",
        )  # fmt: skip

    def start(self) -> None:
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def __aenter__(self) -> Scheduler:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _connected(self, conn: ListenConn) -> None:
        self._conn = conn  # the lock lives and dies with this session, which also LISTENs
        self.leader = False
        # Who leads shows in pg_stat_activity (joined with pg_locks): the host and pid of the firing process.
        await conn.execute("SELECT set_config('application_name', %s, false)", (APPLICATION_NAME,))
        await self._pass()

    async def _notified(self, _payload: str) -> None:
        await self._pass()

    def _disconnected(self) -> None:
        self._conn = None
        self.leader = False

    async def _pass(self) -> None:
        """Take the lock if it is free; as leader, fire what is due and sleep until the next tick. A failure
        propagates to the listener, which reconnects with backoff (and so gives the lock up meanwhile)."""
        conn = self._conn
        if conn is None:
            return
        if not self.leader:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok", _SCHEDULER_LOCK)
            row = await cur.fetchone()
            self.leader = bool(row and row["ok"])
            if self.leader:
                log.info("scheduler: this process fires schedules now")
        if not self.leader:
            self._listener.idle = self.follower_poll
            return
        await self.schedules.fire_due()
        self._listener.idle = max(MIN_WAIT, await self.schedules.seconds_until_due())
