"""LISTEN on one channel for as long as a process runs: the one place that knows how.

Six parts of the platform follow a channel (bus wake-ups, the outbox, job events, policies, the
prompt cache, cancel requests), and each had grown its own loop with its own idea of when to stop,
how long to sleep and whether to catch up after a reconnect. The rules live here instead:

- A dedicated connection (``Database.connect()``), never a pooled one: LISTEN is session state, and a
  pooled connection would carry it to whoever borrows it next.
- ``on_connect`` runs after *every* LISTEN, the first one included. NOTIFY is fire-and-forget, so
  whatever was sent while nobody listened is gone; the caller re-reads the truth (the rows, the
  policy, the flags) there. Because LISTEN comes first, nothing committed after that read is missed.
- Notifications are wake-ups, not data: identical payloads that arrive together are delivered once.
- Any failure (the connection dies, a callback raises) drops the connection, waits with capped
  exponential backoff and reconnects, and so resyncs. An outage is logged once when it starts and
  once when it ends, not on every retry, so a database restart is two log lines, not a wall of them.
- ``stop()`` cancels the task and also sets a flag the loop checks, because a cancel can be swallowed
  by a pool wait inside a callback (``asyncio.wait_for`` in psycopg_pool on Python 3.11).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import sql

from agiflow_lab.db.database import Database

log = logging.getLogger(__name__)

ListenConn = psycopg.AsyncConnection[Any]
OnConnect = Callable[[ListenConn], Awaitable[None]]
OnNotify = Callable[[str], Awaitable[None]]
OnIdle = Callable[[], Awaitable[None]]
OnLost = Callable[[], None]


async def _nothing(*_: object) -> None:
    return None


class Listener:
    """Follows ``channel`` on a dedicated connection until ``stop()``.

    - ``on_notify(payload)``: a notification arrived.
    - ``on_connect(conn)``: LISTEN is in place (again); resync here. ``conn`` is the listening
      connection, for session-scoped work (the outbox relay holds its advisory lock on it); callbacks
      may run queries on it, never while the listener waits on it.
    - ``on_idle()``: no notification for ``idle`` seconds (a fallback poll, for those who want one).
    - ``on_lost()``: not listening any more (the connection failed, could not be made, or ``stop()``);
      synchronous, so state that depends on notifications can be switched off before anything else runs.
    """

    def __init__(
        self,
        db: Database,
        channel: str,
        *,
        on_notify: OnNotify = _nothing,
        on_connect: OnConnect = _nothing,
        on_idle: OnIdle = _nothing,
        on_lost: OnLost | None = None,
        idle: float | None = None,
        backoff_base: float = 0.25,
        backoff_max: float = 10.0,
        name: str | None = None,
    ) -> None:
        self.db = db
        self.channel = channel
        self.name = name or f"listener on {channel}"
        self.on_notify = on_notify
        self.on_connect = on_connect
        self.on_idle = on_idle
        self.on_lost = on_lost
        self.idle = idle
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.connected = asyncio.Event()
        self.failures = 0  # consecutive failed attempts; 0 while listening
        self._outage_since: float | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"agiflow-{self.channel}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._lost()

    async def __aenter__(self) -> Listener:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def backoff(self, failures: int) -> float:
        return float(min(self.backoff_max, self.backoff_base * 2 ** max(0, failures - 1)))

    async def _run(self) -> None:
        while not self._stopping:
            try:
                async with await self.db.connect() as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    await self.on_connect(conn)
                    self._listening()
                    await self._follow(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lost()
                if self._stopping:
                    break
                self.failures += 1
                self._outage(exc)
                await asyncio.sleep(self.backoff(self.failures))

    async def _follow(self, conn: ListenConn) -> None:
        while not self._stopping:
            # The generator holds the connection's lock while it waits, so callbacks run only after it
            # has returned: first the notification that woke us, then whatever else is already there.
            payloads = [n.payload async for n in conn.notifies(timeout=self.idle, stop_after=1)]
            if not payloads:
                if self._stopping:
                    return
                await self.on_idle()
                continue
            payloads += [n.payload async for n in conn.notifies(timeout=0)]
            for payload in dict.fromkeys(payloads):  # once each, in arrival order
                if self._stopping:
                    return
                await self.on_notify(payload)

    def _listening(self) -> None:
        self.failures = 0
        self.connected.set()
        if self._outage_since is not None:
            log.warning("%s: listening again after %.1f s", self.name, time.monotonic() - self._outage_since)
            self._outage_since = None

    def _outage(self, exc: Exception) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("%s: not listening (%s: %s); reconnecting until it works", self.name,
                        type(exc).__name__, exc, exc_info=exc)  # fmt: skip
        else:
            log.debug("%s: attempt %d failed: %r", self.name, self.failures, exc)

    def _lost(self) -> None:
        self.connected.clear()
        if self.on_lost is not None:
            self.on_lost()
