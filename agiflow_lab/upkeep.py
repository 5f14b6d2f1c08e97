"""Upkeep: the system schedule that forgets what the retention rules say may go.

One API replica at a time (``LeaderRole``, lock object 4) runs every rule once when it starts leading and
then every ``every`` seconds: the job pipeline's (job events, settled bus messages, idempotency keys, in
batches: ``jobs.retention``) and the traces' (whole day partitions past each project's retention:
``traces.retention``). Every rule is idempotent and batched, so a pass repeated after a restart, or run by
two replicas at once, only finds less to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agiflow_lab.db.database import Database
from agiflow_lab.db.leader import LeaderRole
from agiflow_lab.jobs import retention as job_retention
from agiflow_lab.traces.retention import TracesPurged, purge_traces
from agiflow_lab.traces.store import PostgresSpanStore

log = logging.getLogger(__name__)

CHANNEL = "agiflow_upkeep"  # a NOTIFY here asks the leader for a pass now (an operator, a test)
LOCK_OBJECT = 4  # pg_try_advisory_lock(LOCK_CLASS, 4): 1 the outbox relay, 2 the scheduler, 3 the alerts


@dataclass(frozen=True)
class UpkeepDone:
    jobs: job_retention.Purged
    traces: TracesPurged


async def run_upkeep(db: Database, rules: job_retention.Retention, *, trace_default_days: int) -> UpkeepDone:
    """Every retention rule, once."""
    jobs = await job_retention.purge(db, rules)
    traces = await purge_traces(db, PostgresSpanStore(db), default_days=trace_default_days)
    return UpkeepDone(jobs, traces)


class Upkeep(LeaderRole):
    def __init__(
        self, db: Database, rules: job_retention.Retention, *, every: float, trace_default_days: int,
        follower_poll: float = 5.0,
    ) -> None:  # fmt: skip
        rules.check()
        self.db = db
        self.rules = rules
        self.every = every
        self.trace_default_days = trace_default_days
        self.passes = 0
        super().__init__(db, CHANNEL, LOCK_OBJECT, self._pass_once, name="upkeep", follower_poll=follower_poll)

    async def _pass_once(self) -> float:
        done = await run_upkeep(self.db, self.rules, trace_default_days=self.trace_default_days)
        self.passes += 1
        log.info(
            "upkeep: forgot %s job events, %s bus messages, %s idempotency keys; %s trace partitions, %s spans, "
            "%s scores", done.jobs.job_events, done.jobs.bus_messages, done.jobs.idempotency_keys,
            len(done.traces.partitions), done.traces.spans, done.traces.scores,
        )  # fmt: skip
        return self.every
