"""The backend half of the job pipeline, run by every API process.

- the outbox relay moves committed messages to the bus (one leader across replicas);
- the dispatcher admits queued jobs under the concurrency limits and puts them on the bus;
- the job-events consumer applies what workers report (one consumer group shared by replicas);
- the event hub pushes every recorded event to the WebSocket clients of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agiflow_lab.bus.base import Bus, Message
from agiflow_lab.bus.outbox import OutboxRelay
from agiflow_lab.bus.topics import JOB_EVENTS
from agiflow_lab.db.database import Database
from agiflow_lab.jobs.hub import EventHub
from agiflow_lab.jobs.service import JobService

log = logging.getLogger(__name__)

BACKEND_GROUP = "agiflow-backend"
EVENTS_IN_FLIGHT = 16
DISPATCH_TICK = 1.0  # catches work freed by another replica, whose in-process kick we never see


class JobBackend:
    def __init__(self, db: Database, bus: Bus, jobs: JobService) -> None:
        self.db = db
        self.bus = bus
        self.jobs = jobs
        self.relay = OutboxRelay(db, bus)
        self.hub = EventHub(db)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.bus.start()
        self.relay.start()
        await self.hub.start()
        # Per-key order holds on both buses, so events of different jobs are applied concurrently.
        consumer = self.bus.consume([JOB_EVENTS], BACKEND_GROUP, max_in_flight=EVENTS_IN_FLIGHT)
        await consumer.start()
        self._consumer = consumer
        self._tasks = [
            asyncio.create_task(consumer.run(self._apply), name="agiflow-job-events"),
            asyncio.create_task(self._dispatch_loop(), name="agiflow-dispatcher"),
        ]

    async def _apply(self, message: Message) -> None:
        await self.jobs.apply_event(message)

    async def _dispatch_loop(self) -> None:
        wanted = self.jobs.dispatch_wanted
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wanted.wait(), DISPATCH_TICK)
            wanted.clear()
            try:
                await self.jobs.dispatch()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("dispatching jobs failed; retrying", exc_info=True)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        # Close the consumer first: a cancel can be swallowed by a pool wait (psycopg_pool on 3.11).
        with contextlib.suppress(Exception):
            await self._consumer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.wait(self._tasks, timeout=10)
        await self.hub.stop()
        await self.relay.stop()
        await self.bus.close()
