"""The alert evaluator role: one API replica at a time evaluates every enabled rule (``LeaderRole``).

It evaluates every ``interval`` seconds, and at once when a rule changes on any replica (a NOTIFY). Two at
once would still open each incident once (``AlertService.evaluate_rule`` holds the rule's row).
"""

from __future__ import annotations

from agiflow_lab.alerts.service import AlertService
from agiflow_lab.alerts.store import CHANNEL
from agiflow_lab.db.database import Database
from agiflow_lab.db.leader import LeaderRole

LOCK_OBJECT = 3  # pg_try_advisory_lock(LOCK_CLASS, 3): (…, 1) the outbox relay, (…, 2) the scheduler


class AlertEvaluator(LeaderRole):
    def __init__(self, db: Database, alerts: AlertService, *, interval: float, follower_poll: float = 1.0) -> None:
        self.alerts = alerts
        self.interval = interval
        super().__init__(db, CHANNEL, LOCK_OBJECT, self._evaluate, name="alert evaluator", follower_poll=follower_poll)

    async def _evaluate(self) -> float:
        await self.alerts.evaluate()
        return self.interval
