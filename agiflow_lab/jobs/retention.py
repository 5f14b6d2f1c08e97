"""Retention: what the job pipeline may forget, and when.

Every job event, every settled bus message and every idempotency key used to be kept for ever. The
rules for forgetting them live with the tables (``jobs.store``, ``bus.postgres``, ``bus.idempotency``);
this module is the entry point a scheduler (a later issue) or an operator calls. Each purge works in
small batches, each its own short statement, so it never holds locks on a busy table for long and can
be stopped between batches.

The retentions depend on each other: an applied bus message is recognised by its event row (job
events) or its marker (consumer idempotency), so both must outlive the time the message itself can
come back, which is the bus retention. ``Retention.check`` refuses settings that break that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from agiflow_lab.bus import idempotency
from agiflow_lab.bus import postgres as bus_store
from agiflow_lab.db.database import Database
from agiflow_lab.errors import InvalidInput
from agiflow_lab.jobs import store

BATCH = 1000
KEEP_EVENTS_PER_JOB = 20  # the end of a finished job's log, for whoever opens it later


@dataclass(frozen=True)
class Retention:
    job_events: timedelta = timedelta(days=30)
    keep_events_per_job: int = KEEP_EVENTS_PER_JOB
    bus_messages: timedelta = timedelta(days=7)
    dead_letters: timedelta | None = None  # None: kept until an operator re-queues or purges them
    idempotency_keys: timedelta = timedelta(days=30)

    def check(self) -> None:
        durations = (("job_events", self.job_events), ("bus_messages", self.bus_messages),
                     ("idempotency_keys", self.idempotency_keys), ("dead_letters", self.dead_letters))  # fmt: skip
        for field, value in durations:
            if value is not None and value <= timedelta(0):
                raise InvalidInput(f"{field} must be a positive duration", {"field": field})
        if self.keep_events_per_job < 0:
            raise InvalidInput("keep_events_per_job cannot be negative", {"field": "keep_events_per_job"})
        why = {
            "job_events": "an event row marks its message as applied; one still retained could be applied twice",
            "idempotency_keys": "a marker must outlive its message, or a redelivery is applied twice",
            "dead_letters": "purging dead letters also purges the settled messages of that age",
        }
        for field, value in durations:
            if field in why and value is not None and value < self.bus_messages:
                raise InvalidInput(f"{field} must be at least bus_messages: {why[field]}", {"field": field})


@dataclass(frozen=True)
class Purged:
    job_events: int
    bus_messages: int
    idempotency_keys: int


async def purge_job_events(
    db: Database, older_than: timedelta, *, keep_per_job: int = KEEP_EVENTS_PER_JOB, batch: int = BATCH
) -> int:
    """Events of jobs finished more than ``older_than`` ago, except each job's last state change, last
    progress and newest ``keep_per_job`` events. Jobs still queued or running lose nothing."""
    deleted = 0
    while True:
        async with db.connection() as conn:
            jobs, events = await store.purge_events(conn, older_than, keep_per_job=keep_per_job, jobs=batch)
        deleted += events
        if jobs < batch:
            return deleted


async def purge_settled_messages(
    db: Database, older_than: timedelta, *, dead_letters: bool = False, batch: int = BATCH
) -> int:
    """Postgres bus messages every group settled more than ``older_than`` ago; dead letters only if
    ``dead_letters``. (A Kafka deployment leaves these tables empty: the broker keeps its own retention.)"""
    deleted = 0
    while True:
        async with db.connection() as conn:
            n = await bus_store.purge_settled(conn, older_than, dead_letters=dead_letters, limit=batch)
        deleted += n
        if n < batch:
            return deleted


async def purge_idempotency_keys(db: Database, older_than: timedelta, *, batch: int = BATCH) -> int:
    """Consumers' processed-message markers, and the submission keys of jobs finished, more than
    ``older_than`` ago. Returns how many were forgotten (markers and keys together)."""
    forgotten = 0
    for forget in (idempotency.forget_before, store.forget_idempotency_keys):
        while True:
            async with db.connection() as conn:
                n = await forget(conn, older_than, limit=batch)
            forgotten += n
            if n < batch:
                break
    return forgotten


async def purge(db: Database, retention: Retention | None = None) -> Purged:
    """Apply every retention rule once."""
    retention = retention or Retention()
    retention.check()
    messages = await purge_settled_messages(db, retention.bus_messages)
    if retention.dead_letters is not None:
        messages += await purge_settled_messages(db, retention.dead_letters, dead_letters=True)
    return Purged(
        job_events=await purge_job_events(db, retention.job_events, keep_per_job=retention.keep_events_per_job),
        bus_messages=messages,
        idempotency_keys=await purge_idempotency_keys(db, retention.idempotency_keys),
    )
