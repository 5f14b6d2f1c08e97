"""Retention: what each purge deletes and, as importantly, what it keeps.

A fresh migrated database per test. Jobs, events and bus messages are made through the real services
and the real Postgres bus; only their clocks are moved back (``at``, ``finished_at``, ``created_at``,
``updated_at``), since a test cannot wait a month.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.bus import JOB_EVENTS, Delivery, Message, first_time
from agiflow_lab.bus.postgres import PostgresBus
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import InvalidInput
from agiflow_lab.jobs import ownership, retention
from agiflow_lab.jobs.events import CellProgress, Finished, FinishedEvent, LogEvent, LogOutput, ProgressEvent
from agiflow_lab.jobs.models import JobSubmit
from agiflow_lab.jobs.service import JobService
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.upkeep import CHANNEL as UPKEEP_CHANNEL
from agiflow_lab.upkeep import Upkeep
from tests.support.polling import until

MONTH = timedelta(days=30)
WEEK = timedelta(days=7)


@pytest.fixture
async def jobs(db: Database) -> JobService:
    projects = ProjectService(db, Authorizer(db))
    await projects.ensure("p", "p", "olivia")
    return JobService(db, projects)


def delivered(body: dict[str, Any]) -> Message:
    return Message(id=str(uuid.uuid4()), topic=JOB_EVENTS, key=str(body["job_id"]), payload=body, headers={},
                   attempt=1, created_at=datetime.now(UTC))  # fmt: skip


async def run_job(jobs: JobService, *, logs: int = 0, finish: bool = True, key: str | None = None) -> str:
    """A job taken by worker w-1 that reports progress and ``logs`` log lines, and succeeds if ``finish``."""
    job, _ = await jobs.submit(Actor("olivia"), "p", JobSubmit(notebook="builtin:hello", idempotency_key=key))
    assert isinstance(await ownership.claim(jobs.db, job.id, "w-1"), ownership.Claim)
    who = {"job_id": job.id, "attempt": 1, "worker_id": "w-1"}
    await jobs.apply_event(delivered(ProgressEvent(**who, data=CellProgress(done=1, total=2)).wire()))
    for n in range(logs):
        await jobs.apply_event(delivered(LogEvent(**who, data=LogOutput(stream="stdout", text=f"{n}\n")).wire()))
    if finish:
        done = Finished(status="succeeded", cells_done=2, cells_total=2)
        await jobs.apply_event(delivered(FinishedEvent(**who, data=done).wire()))
    return job.id


async def age(db: Database, job_id: str, by: timedelta, *, events: bool = True) -> None:
    """Move a job's finish (and its events) ``by`` into the past."""
    async with db.connection() as conn:
        await conn.execute("UPDATE control.jobs SET finished_at = finished_at - %s WHERE id = %s", (by, job_id))
        if events:
            await conn.execute("UPDATE control.job_events SET at = at - %s WHERE job_id = %s", (by, job_id))


async def event_log(jobs: JobService, job_id: str) -> list[tuple[str, str]]:
    """(type, what) of a job's events, oldest first."""
    return [
        (e.type, str(e.data.get("state") or e.data.get("text") or e.data.get("done")))
        for e in await jobs.events("p", job_id, limit=1000)
    ]


async def test_old_finished_jobs_keep_their_last_state_progress_and_newest_events(jobs: JobService) -> None:
    old = await run_job(jobs, logs=10)
    await age(jobs.db, old, 2 * MONTH)
    assert len(await event_log(jobs, old)) == 14  # queued, running, progress, 10 log lines, succeeded

    assert await retention.purge_job_events(jobs.db, MONTH, keep_per_job=3) == 10
    assert await event_log(jobs, old) == [
        ("progress", "1"),  # the last progress, however old
        ("log", "8\n"),  # the newest three ...
        ("log", "9\n"),
        ("state", "succeeded"),  # ... of which the last state change
    ]
    assert await retention.purge_job_events(jobs.db, MONTH, keep_per_job=3) == 0  # nothing left to do
    job = await jobs.get("p", old)
    assert (job.state, job.cells_done) == ("succeeded", 2)  # the job itself is untouched


async def test_running_recent_and_retried_jobs_keep_every_event(jobs: JobService) -> None:
    running = await run_job(jobs, logs=5, finish=False)
    recent = await run_job(jobs, logs=5)
    await age(jobs.db, recent, timedelta(days=10))
    late_events = await run_job(jobs, logs=5)  # finished long ago, but its events were written lately
    await age(jobs.db, late_events, 2 * MONTH, events=False)
    retried = await run_job(jobs, logs=5)
    async with jobs.db.connection() as conn:  # it failed long ago, and is being retried now
        await conn.execute("UPDATE control.jobs SET state = 'failed' WHERE id = %s", (retried,))
    await age(jobs.db, retried, 2 * MONTH)
    await jobs.retry(Actor("olivia"), "p", retried)
    async with jobs.db.connection() as conn:
        await conn.execute("UPDATE control.job_events SET at = at - %s WHERE job_id = %s", (2 * MONTH, running))
    before = {job: await event_log(jobs, job) for job in (running, recent, late_events, retried)}

    assert await retention.purge_job_events(jobs.db, MONTH, keep_per_job=0) == 0
    assert {job: await event_log(jobs, job) for job in before} == before


async def test_a_job_retried_after_a_purge_is_purged_again_when_it_finishes_again(jobs: JobService) -> None:
    job_id = await run_job(jobs, logs=4)
    await age(jobs.db, job_id, 2 * MONTH)
    assert await retention.purge_job_events(jobs.db, MONTH, keep_per_job=0) == 6  # queued, running, 4 lines
    async with jobs.db.connection() as conn:
        await conn.execute("UPDATE control.jobs SET state = 'failed' WHERE id = %s", (job_id,))
    await jobs.retry(Actor("olivia"), "p", job_id)
    claim = await ownership.claim(jobs.db, job_id, "w-2")
    assert isinstance(claim, ownership.Claim)
    who = {"job_id": job_id, "attempt": claim.attempt, "worker_id": "w-2"}
    await jobs.apply_event(delivered(FinishedEvent(**who, data=Finished(status="succeeded")).wire()))
    await age(jobs.db, job_id, 2 * MONTH)
    assert await retention.purge_job_events(jobs.db, MONTH, keep_per_job=0) > 0
    assert [t for t, _ in await event_log(jobs, job_id)] == ["progress", "state"]


async def take(consumer: Any, n: int) -> list[Delivery]:
    got: list[Delivery] = []
    async with asyncio.timeout(30):
        while len(got) < n:
            got.append(await anext(consumer))
    return got


async def test_settled_messages_go_and_unsettled_ones_and_dead_letters_stay(db: Database) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    async with PostgresBus(db, heartbeat=False) as bus:
        await bus.subscribe([topic], "g1")
        await bus.subscribe([topic], "g2")
        ids = [await bus.publish(topic, f"k{n}", {"n": n}) for n in range(5)]
        acked, unsettled, dead, recent, claimed = ids
        async with bus.consume([topic], "g1", max_in_flight=5) as g1, bus.consume([topic], "g2", max_in_flight=5) as g2:
            for delivery in await take(g1, 5):
                if delivery.message.id != claimed:
                    await delivery.ack()
            for delivery in await take(g2, 5):
                if delivery.message.id in (acked, recent):
                    await delivery.ack()
                elif delivery.message.id == dead:
                    await delivery.dead("cannot be handled")
                # unsettled and claimed: still held by g2
            async with db.connection() as conn:
                await conn.execute("UPDATE control.bus_messages SET created_at = created_at - %s", (MONTH,))
                await conn.execute(
                    "UPDATE control.bus_deliveries SET updated_at = updated_at - %s WHERE message_id <> %s",
                    (MONTH, uuid.UUID(recent)),
                )
            assert await retention.purge_settled_messages(db, WEEK) == 1
            assert await remaining(db) == {unsettled, dead, recent, claimed}
            assert [d.message.id for d in await bus.dead_letters(topic)] == [dead]

            assert await retention.purge_settled_messages(db, WEEK, dead_letters=True) == 1
            assert await remaining(db) == {unsettled, recent, claimed}


async def remaining(db: Database) -> set[str]:
    async with db.connection() as conn:
        return {str(r["id"]) for r in await (await conn.execute("SELECT id FROM control.bus_messages")).fetchall()}


async def test_old_idempotency_markers_and_finished_jobs_keys_are_forgotten(jobs: JobService) -> None:
    db = jobs.db
    async with db.transaction() as conn:
        assert await first_time(conn, "writer", "m-old")
        assert await first_time(conn, "writer", "m-new")
        await conn.execute(
            "UPDATE control.processed_messages SET processed_at = processed_at - %s WHERE message_id = 'm-old'",
            (2 * MONTH,),
        )
    old = await run_job(jobs, key="old")
    await age(db, old, 2 * MONTH)
    recent = await run_job(jobs, key="recent")
    running = await run_job(jobs, key="running", finish=False)
    async with db.connection() as conn:  # submitted long ago, still running: its key must hold
        await conn.execute("UPDATE control.jobs SET created_at = created_at - %s WHERE id = %s", (2 * MONTH, running))

    assert await retention.purge_idempotency_keys(db, MONTH) == 2  # m-old and the old job's key

    async with db.transaction() as conn:
        assert await first_time(conn, "writer", "m-old")  # forgotten: it would be applied again
        assert not await first_time(conn, "writer", "m-new")
    assert (await jobs.get("p", old)).idempotency_key is None
    again, created = await jobs.submit(Actor("olivia"), "p", JobSubmit(notebook="builtin:hello", idempotency_key="old"))
    assert created and again.id != old
    for key, job_id in (("recent", recent), ("running", running)):
        same, created = await jobs.submit(
            Actor("olivia"), "p", JobSubmit(notebook="builtin:hello", idempotency_key=key)
        )
        assert not created and same.id == job_id


async def test_purge_applies_every_rule_and_refuses_retentions_that_would_apply_a_message_twice(
    jobs: JobService,
) -> None:
    job_id = await run_job(jobs, logs=3)
    await age(jobs.db, job_id, 2 * MONTH)
    purged = await retention.purge(jobs.db, retention.Retention(keep_events_per_job=0))
    assert purged == retention.Purged(job_events=5, bus_messages=0, idempotency_keys=0)

    for bad, field in [
        (retention.Retention(bus_messages=MONTH, idempotency_keys=WEEK), "idempotency_keys"),
        (retention.Retention(bus_messages=MONTH, job_events=WEEK), "job_events"),
        (retention.Retention(dead_letters=timedelta(days=1)), "dead_letters"),
        (retention.Retention(job_events=timedelta(0)), "job_events"),
        (retention.Retention(keep_events_per_job=-1), "keep_events_per_job"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            await retention.purge(jobs.db, bad)
        assert refused.value.details == {"field": field}


async def test_the_upkeep_role_applies_the_rules_by_one_leader_and_again_when_asked(jobs: JobService) -> None:
    old = await run_job(jobs, logs=10)
    await age(jobs.db, old, 2 * MONTH)
    rules = retention.Retention(job_events=MONTH, keep_events_per_job=3)
    leader = Upkeep(jobs.db, rules, every=3600, trace_default_days=30, follower_poll=0.2)
    standby = Upkeep(jobs.db, rules, every=3600, trace_default_days=30, follower_poll=0.2)
    leader.start()
    try:
        await until(now(lambda: leader.passes == 1), "the leader's first pass", timeout=30)
        assert len(await event_log(jobs, old)) == 4  # what the rules keep of an old job (see above)
        standby.start()

        # Asked for a pass (NOTIFY), the leader runs one now; the standby never runs any while it leads.
        await until(now(lambda: standby._conn is not None and not standby.leader), "the standby's session", timeout=30)
        async with jobs.db.connection() as conn:
            await conn.execute("SELECT pg_notify(%s, '')", (UPKEEP_CHANNEL,))
        await until(now(lambda: leader.passes == 2), "a pass on request", timeout=30)
        assert standby.passes == 0
    finally:
        await leader.stop()
        await standby.stop()
    with pytest.raises(InvalidInput):
        Upkeep(jobs.db, retention.Retention(idempotency_keys=timedelta(days=1)), every=1, trace_default_days=30)


def now(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """A condition on in-process state, as ``until`` asks for one."""

    async def asked() -> bool:
        return check()

    return asked
