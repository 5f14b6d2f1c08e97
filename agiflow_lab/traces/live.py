"""Which projects just received spans, for views that follow them live.

A span writer commits a batch and, in the same transaction, NOTIFYs the project's id on ``CHANNEL``
(delivered only if the batch commits). Each API process LISTENs once (``SpanActivity``) and wakes the
views that follow that project. A wake-up carries no spans: the view re-reads what it shows through
the query API, so a lost notification costs freshness, never data, and a view that fell behind
simply reads once. Writers may commit hundreds of batches a second; followers are woken at most once
per ``min_interval`` however many arrive, so a busy project costs a browser one refetch a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from agiflow_lab.db.database import Conn, Database
from agiflow_lab.db.listen import Listener

CHANNEL = "agiflow_spans"


async def announce(conn: Conn, project_id: int) -> None:
    """Part of a span batch's transaction: its followers hear of it once it commits."""
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(project_id)))


@dataclass(eq=False)
class Follower:
    project_id: int
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class SpanActivity:
    """Any channel NOTIFY'd with project ids works the same way (in-app notifications follow theirs)."""

    def __init__(
        self, db: Database, min_interval: float = 1.0, *, channel: str = CHANNEL, name: str = "span activity"
    ) -> None:
        self.min_interval = min_interval
        self._followers: dict[int, set[Follower]] = {}
        self._listener = Listener(db, channel, on_notify=self._on_notify, name=name)

    def start(self) -> None:
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def follow(self, project_id: int) -> AsyncIterator[None]:
        """Yields each time the project got spans, at most once per ``min_interval``; ends when the caller stops."""
        follower = Follower(project_id)
        self._followers.setdefault(project_id, set()).add(follower)
        try:
            last = 0.0
            while True:
                await follower.woken.wait()
                wait = last + self.min_interval - time.monotonic()
                if wait > 0:  # coalesce: whatever else arrives meanwhile is the same wake-up
                    await asyncio.sleep(wait)
                follower.woken.clear()
                last = time.monotonic()
                yield
        finally:
            followers = self._followers.get(project_id, set())
            followers.discard(follower)
            if not followers:
                self._followers.pop(project_id, None)

    async def _on_notify(self, payload: str) -> None:
        if payload.isdigit():
            for follower in self._followers.get(int(payload), ()):
                follower.woken.set()
