"""Fan-out of job events to live views (WebSocket clients) in this process.

Every event is a row in ``control.job_events`` with an increasing id, and its insert NOTIFYs. The hub
LISTENs once per process, reads the new rows in one query and hands each to the subscribers of its
project. Because the rows are the source of truth, a dropped notification or a reconnect loses
nothing: the hub (and any client resuming with ``after=<last id>``) simply reads from the last id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from agiflow_lab.db.database import Database
from agiflow_lab.jobs import store
from agiflow_lab.jobs.models import JobEvent

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000  # a subscriber this far behind is cut off and must resume from its last id


@dataclass(eq=False)
class Subscription:
    projects: frozenset[str]
    queue: asyncio.Queue[JobEvent | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class EventHub:
    def __init__(self, db: Database, fallback_poll: float = 2.0) -> None:
        self.db = db
        self.fallback_poll = fallback_poll
        self.subscriptions: set[Subscription] = set()
        self._last_id = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.db.connection() as conn:
            self._last_id = await store.last_event_id(conn)
        self._task = asyncio.create_task(self._run(), name="agiflow-event-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, projects: set[str]) -> Subscription:
        sub = Subscription(frozenset(projects))
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)

    async def _run(self) -> None:
        while True:
            try:
                conn = await self.db.connect()
                async with conn:
                    await conn.execute(f"LISTEN {store.EVENTS_CHANNEL}")
                    await self._deliver_new()
                    while True:
                        # Wakes on the first notification, or after fallback_poll seconds regardless.
                        async for _ in conn.notifies(timeout=self.fallback_poll, stop_after=1):
                            pass
                        await self._deliver_new()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event hub lost its database connection; retrying", exc_info=True)
                await asyncio.sleep(1)

    async def _deliver_new(self) -> None:
        while True:
            async with self.db.connection() as conn:
                rows = await store.events_after(conn, self._last_id, limit=1000)
            if not rows:
                return
            for row in rows:
                event = JobEvent.model_validate(row)
                self._last_id = event.id
                for sub in list(self.subscriptions):
                    if event.project in sub.projects:
                        try:
                            sub.queue.put_nowait(event)
                        except asyncio.QueueFull:
                            self.unsubscribe(sub)
                            with contextlib.suppress(asyncio.QueueFull):
                                sub.queue.get_nowait()
                                sub.queue.put_nowait(None)  # tell the client to resume from its last id
            if len(rows) < 1000:
                return
