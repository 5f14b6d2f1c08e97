"""The backend half of the job pipeline, run by every API process.

- the outbox relay moves committed messages to the bus (one leader across replicas);
- the dispatcher admits queued jobs under the concurrency limits and puts them on the bus;
- the job-events consumer applies what workers report (one consumer group shared by replicas);
- the event hub pushes every recorded event to the WebSocket clients of this process.

The backend starts whatever state the bus is in: a broker that is down at start is reported (once, by
the bus's health) and the consumer joins when it is back, while submissions wait in the outbox. It
stops within seconds whatever state the bus and the database are in: every step is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agiflow_lab.bus.base import Bus, Message
from agiflow_lab.bus.membership import Membership
from agiflow_lab.bus.outbox import OutboxRelay
from agiflow_lab.bus.topics import JOB_EVENTS
from agiflow_lab.core.shutdown import finish_within
from agiflow_lab.db.database import Database
from agiflow_lab.errors import Unavailable
from agiflow_lab.jobs.hub import EventHub
from agiflow_lab.jobs.service import JobService

log = logging.getLogger(__name__)

BACKEND_GROUP = "agiflow-backend"
EVENTS_IN_FLIGHT = 16
DISPATCH_TICK = 1.0  # catches work freed by another replica, whose in-process kick we never see
RETRY_MAX = 10.0  # cap of the backoff while the consumer cannot join (broker or database down)
STEP_SECONDS = 2.0  # each step of stop(); together well inside the 10 s a stopping server has


class JobBackend:
    def __init__(self, db: Database, bus: Bus, jobs: JobService) -> None:
        self.db = db
        self.bus = bus
        self.jobs = jobs
        self.relay = OutboxRelay(db, bus)
        self.hub = EventHub(db)
        # Per-key order holds on both buses, so events of different jobs are applied concurrently.
        self.events = Membership(bus, [JOB_EVENTS], BACKEND_GROUP, self._apply, max_in_flight=EVENTS_IN_FLIGHT,
                                 name="job events")  # fmt: skip
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        try:
            await self.bus.start()
        except Unavailable:
            pass  # reported by the bus's health; the relay and the consumer retry until it is back
        else:
            self.bus.health.up()
        self.relay.start()
        await self.hub.start()
        self.events.start()
        self._tasks = [asyncio.create_task(self._dispatch_loop(), name="agiflow-dispatcher")]

    async def _apply(self, message: Message) -> None:
        await self.jobs.apply_event(message)

    async def _dispatch_loop(self) -> None:
        wanted = self.jobs.dispatch_wanted
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wanted.wait(), DISPATCH_TICK)
            wanted.clear()
            try:
                await self.jobs.dispatch()
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1  # logged once per streak: a database outage is one fact
                log.log(logging.WARNING if failures == 1 else logging.DEBUG, "dispatching jobs failed; retrying",
                        exc_info=True)  # fmt: skip
                await asyncio.sleep(min(RETRY_MAX, 2 ** (failures - 1)))
            else:
                if failures:
                    log.warning("dispatching jobs again after %d failed attempts", failures)
                failures = 0

    async def stop(self) -> None:
        """Every step bounded (see ``finish_within``): a broker or database that is gone cannot hold a
        stopping server, and a step that fails does not skip the ones after it."""
        await self.events.stop()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STEP_SECONDS)
        await finish_within(STEP_SECONDS, self.hub.stop(), "the event hub")
        await finish_within(STEP_SECONDS, self.relay.stop(), "the outbox relay")
        await finish_within(STEP_SECONDS, self.bus.close(), "the bus")
