"""The scheduler role: one API replica at a time fires due schedules (``LeaderRole``).

The leader sleeps until the earliest tick, and a NOTIFY from any replica's edit wakes it to look again: no
polling loop of its own. Two schedulers at once would still fire each tick once (``ScheduleService``).
"""

from __future__ import annotations

from agiflow_lab.db.database import Database
from agiflow_lab.db.leader import LeaderRole
from agiflow_lab.schedules.service import ScheduleService
from agiflow_lab.schedules.store import CHANNEL

LOCK_OBJECT = 2  # pg_try_advisory_lock(LOCK_CLASS, 2); the outbox relay holds (…, 1)


class Scheduler(LeaderRole):
    def __init__(self, db: Database, schedules: ScheduleService, *, follower_poll: float = 1.0) -> None:
        self.schedules = schedules
        super().__init__(db, CHANNEL, LOCK_OBJECT, self._fire, name="scheduler", follower_poll=follower_poll)

    async def __aenter__(self) -> Scheduler:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _fire(self) -> float:
        await self.schedules.fire_due()
        return await self.schedules.seconds_until_due()
