"""Fan-out of job events to live views (WebSocket clients) in this process.

Every event is a row in ``control.job_events`` with an increasing id, and its insert NOTIFYs. The hub
LISTENs once per process, reads the new rows in one query and hands each to the subscribers of its
project. Because the rows are the source of truth, a dropped notification or a reconnect loses
nothing: the hub (and any client resuming with ``after=<last id>``) simply reads from the last id.
Rows commit out of id order, so the hub reads through an ``EventCursor``, which never moves past an
id that may still appear; ``delivered_through`` is the mark a new subscriber catches up to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from agiflow_lab.db.database import Database
from agiflow_lab.db.listen import ListenConn, Listener
from agiflow_lab.jobs import store
from agiflow_lab.jobs.event_cursor import EventCursor
from agiflow_lab.jobs.models import JobEvent

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000  # a subscriber this far behind is cut off and must resume from its last id
GAP_POLL = 0.1  # while an id is missing, look again this often (a rolled-back insert sends no notification)


@dataclass(eq=False)
class Subscription:
    projects: frozenset[str]
    queue: asyncio.Queue[JobEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class EventHub:
    def __init__(self, db: Database, fallback_poll: float = 2.0) -> None:
        self.db = db
        self.fallback_poll = fallback_poll
        self.subscriptions: set[Subscription] = set()
        self._cursor = EventCursor(db)
        # Every wake-up (a notification, a reconnect, fallback_poll seconds of quiet) reads from the last id.
        self._listener = Listener(
            db, store.EVENTS_CHANNEL, on_connect=self._deliver_on_connect, on_notify=self._deliver_on_notify,
            on_idle=self._deliver_new, idle=fallback_poll, name="event hub",
        )  # fmt: skip

    async def start(self) -> None:
        async with self.db.connection() as conn:
            self._cursor.through = await store.last_event_id(conn)
        self._listener.start()

    @property
    def delivered_through(self) -> int:
        """Every event up to this id has been handed to the subscribers of the moment (or will never be)."""
        return self._cursor.through

    async def stop(self) -> None:
        await self._listener.stop()

    def subscribe(self, projects: set[str]) -> Subscription:
        sub = Subscription(frozenset(projects))
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)

    async def _deliver_on_connect(self, _conn: ListenConn) -> None:
        await self._deliver_new()

    async def _deliver_on_notify(self, payload: str) -> None:
        if not payload.isdigit() or int(payload) > self._cursor.through:  # a burst: the first read takes all
            await self._deliver_new()

    async def _deliver_new(self) -> None:
        while True:
            rows = await self._cursor.read(limit=1000)
            self._listener.idle = GAP_POLL if self._cursor.waiting else self.fallback_poll
            for row in rows:
                event = JobEvent.model_validate(row)
                for sub in list(self.subscriptions):
                    if event.project in sub.projects:
                        try:
                            sub.queue.put_nowait(event)
                        except asyncio.QueueFull:
                            self.unsubscribe(sub)
                            with contextlib.suppress(asyncio.QueueFull):
                                sub.queue.get_nowait()
                                sub.queue.put_nowait(None)  # tell the client to resume from its last id
            if not self._cursor.more:
                return
