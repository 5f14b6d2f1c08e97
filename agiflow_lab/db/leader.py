"""A role that one process at a time plays across replicas: the scheduler, the alert evaluator.

The role follows its channel with the shared ``Listener``, whose connection also holds a session advisory
lock (as the outbox relay does): the holder is the leader and does the work; the others try the lock every
``follower_poll`` seconds and take over within about that long after the leader's session ends (a replica
killed with SIGKILL included: its connection closes with it). The lock only decides who does the work: the
work must be correct whoever runs it, and with two at once.

``work()`` returns how long the leader may sleep before it must look again (the listener's idle timeout is
set after every pass), and a NOTIFY on the channel from any replica wakes it to look at once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable

from agiflow_lab.db.database import Database
from agiflow_lab.db.listen import ListenConn, Listener

log = logging.getLogger(__name__)

LOCK_CLASS = 0x41674255  # the class of every role's advisory lock; objects: 1 outbox relay, 2 scheduler, 3 alerts
MIN_WAIT = 0.05  # the shortest sleep between passes (a pass that left work due: look again shortly)


class LeaderRole:
    def __init__(
        self, db: Database, channel: str, lock_object: int, work: Callable[[], Awaitable[float]], *, name: str,
        follower_poll: float = 1.0,
    ) -> None:  # fmt: skip
        """``name`` is the role ("scheduler"): in logs, and in ``application_name`` with the host and pid of
        the leading process, so who leads shows in pg_stat_activity (joined with pg_locks)."""
        self.work = work
        self.name = name
        self.lock = (LOCK_CLASS, lock_object)
        self.follower_poll = follower_poll
        self.application_name = f"agiflow {name} {socket.gethostname()}:{os.getpid()}"[:63]
        self.leader = False
        self._conn: ListenConn | None = None
        self._listener = Listener(
            db, channel, on_connect=self._connected, on_notify=self._notified, on_idle=self._pass,
            on_lost=self._disconnected, idle=follower_poll, name=name,
        )  # fmt: skip

    def start(self) -> None:
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def _connected(self, conn: ListenConn) -> None:
        self._conn = conn  # the lock lives and dies with this session, which also LISTENs
        self.leader = False
        await conn.execute("SELECT set_config('application_name', %s, false)", (self.application_name,))
        await self._pass()

    async def _notified(self, _payload: str) -> None:
        await self._pass()

    def _disconnected(self) -> None:
        self._conn = None
        self.leader = False

    async def _pass(self) -> None:
        """Take the lock if it is free; as leader, work and sleep as long as the work says. A failure
        propagates to the listener, which reconnects with backoff (and so gives the lock up meanwhile)."""
        conn = self._conn
        if conn is None:
            return
        if not self.leader:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok", self.lock)
            row = await cur.fetchone()
            self.leader = bool(row and row["ok"])
            if self.leader:
                log.info("%s: this process leads now", self.name)
        if not self.leader:
            self._listener.idle = self.follower_poll
            return
        self._listener.idle = max(MIN_WAIT, await self.work())
