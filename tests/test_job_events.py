"""The job-events contract: the typed message, its wire JSON, and how the backend applies (or refuses) it.

In process, against a fresh migrated database per test: a real project, a real job claimed by a
"worker" through ``ownership.claim``, messages through the real Postgres bus and the backend's handler.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.bus import JOB_EVENTS, Message, Reject
from agiflow_lab.bus.postgres import PostgresBus, dead_letters
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.jobs import ownership
from agiflow_lab.jobs.events import (
    CellProgress,
    Finished,
    FinishedEvent,
    ItemProgress,
    LogEvent,
    LogOutput,
    ProgressEvent,
    RunErrorData,
    parse_job_event,
    record_event,
)
from agiflow_lab.jobs.models import JobSubmit
from agiflow_lab.jobs.service import JobService
from agiflow_lab.projects.service import ProjectService

WHO = {"job_id": "6f1c1f7e-0d7a-4a39-9d53-2f0c52a3a1b1", "attempt": 2, "worker_id": "host-1-ab12"}

# Bodies exactly as the senders of the previous release built them (still in flight during an upgrade).
LEGACY = {
    "cells": {**WHO, "type": "progress", "data": {"done": 3, "total": 7}},
    "items": {
        **WHO,
        "type": "progress",
        "data": {"unit": "items", "run_id": "r-1", "done": 10, "total": 60, "passed": 9, "errors": 1},
    },  # fmt: skip
    "log": {**WHO, "type": "log", "data": {"stream": "stderr", "text": "warning: x\n"}},
    "finished": {
        **WHO,
        "type": "finished",
        "data": {
            "status": "failed",
            "result": None,
            "cells_done": 2,
            "cells_total": 4,
            "error": {
                "cell_index": 2,
                "ename": "ValueError",
                "evalue": "bad",
                "traceback": ["tb"],
                "execution_count": 2,
            },
        },
    },  # fmt: skip
    "no notebook": {
        **WHO,
        "type": "finished",
        "data": {"status": "failed", "error": {"ename": "FileNotFoundError", "evalue": "gone", "traceback": []}},
    },  # fmt: skip
}


@dataclass
class World:
    db: Database
    jobs: JobService
    project: str
    job_id: str


@pytest.fixture
async def world(db: Database) -> World:
    """A job of a fresh project, claimed (attempt 1) by worker w-1."""
    projects = ProjectService(db, Authorizer(db))
    slug = f"p-{uuid.uuid4().hex[:8]}"
    await projects.ensure(slug, slug, "olivia")
    jobs = JobService(db, projects)
    job, _ = await jobs.submit(Actor("olivia"), slug, JobSubmit(notebook="builtin:hello"))
    claim = await ownership.claim(db, job.id, "w-1")
    assert isinstance(claim, ownership.Claim) and claim.attempt == 1
    return World(db, jobs, slug, job.id)


def message(body: dict[str, Any]) -> Message:
    """As the bus hands it to the backend's handler."""
    return Message(id=str(uuid.uuid4()), topic=JOB_EVENTS, key=str(body.get("job_id")), payload=body, headers={},
                   attempt=1, created_at=datetime.now(UTC))  # fmt: skip


@pytest.mark.parametrize("kind", ["cells", "items", "log", "finished"])
def test_messages_in_flight_parse_and_are_written_back_unchanged(kind: str) -> None:
    assert parse_job_event(LEGACY[kind]).wire() == LEGACY[kind]


def test_each_type_parses_to_its_typed_payload() -> None:
    assert parse_job_event(LEGACY["cells"]).data == CellProgress(done=3, total=7)
    items = parse_job_event(LEGACY["items"]).data
    assert isinstance(items, ItemProgress) and items.run_id == "r-1"
    assert parse_job_event(LEGACY["log"]).data == LogOutput(stream="stderr", text="warning: x\n")
    finished = parse_job_event(LEGACY["no notebook"])
    assert isinstance(finished, FinishedEvent) and finished.data.cells_done is None
    assert "cells_done" not in finished.wire()["data"]  # left out, not null: older backends read it with int()


@pytest.mark.parametrize(
    "body",
    [
        {**WHO, "type": "progress", "data": {"done": 1}},  # no total
        {**WHO, "type": "progress", "data": {"unit": "tokens", "done": 1, "total": 2}},  # a unit nobody knows
        {**WHO, "type": "log", "data": {"stream": "stdin", "text": "x"}},
        {**WHO, "type": "finished", "data": {"status": "exploded"}},
        {**WHO, "type": "heartbeat", "data": {}},
        {"type": "log", "data": {"stream": "stdout", "text": "x"}},  # whose?
        {**WHO, "attempt": 0, "type": "log", "data": {"stream": "stdout", "text": "x"}},
        "not even an object",
    ],
)
def test_anything_else_is_refused(body: Any) -> None:
    with pytest.raises(ValidationError):
        parse_job_event(body)


async def test_record_event_commits_the_event_with_the_writes_it_reports(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute("CREATE TABLE results (n int)")
    event = ProgressEvent(**WHO, data=ItemProgress(run_id="r-1", done=1, total=2, passed=1, errors=0))

    async def insert(conn: Conn) -> None:
        await conn.execute("INSERT INTO results VALUES (1)")

    await record_event(db, event, with_writes=insert)
    async with db.connection() as conn:
        outbox = await (await conn.execute("SELECT topic, key, payload FROM control.bus_outbox")).fetchall()
        written = await (await conn.execute("SELECT n FROM results")).fetchall()
    assert outbox == [{"topic": JOB_EVENTS, "key": WHO["job_id"], "payload": event.wire()}]
    assert written == [{"n": 1}]


async def test_events_of_the_current_attempt_move_the_job_and_reach_its_event_log(world: World) -> None:
    who = {"job_id": world.job_id, "attempt": 1, "worker_id": "w-1"}
    progress = message(ProgressEvent(**who, data=CellProgress(done=2, total=3)).wire())
    await world.jobs.apply_event(progress)
    await world.jobs.apply_event(progress)  # redelivered: applied once
    await world.jobs.apply_event(message(LogEvent(**who, data=LogOutput(stream="stdout", text="hi\n")).wire()))
    await world.jobs.apply_event(message({**who, "attempt": 5, "type": "progress", "data": {"done": 3, "total": 3}}))
    done = Finished(status="succeeded", result={"answer": 42}, cells_done=3, cells_total=3)
    await world.jobs.apply_event(message(FinishedEvent(**who, data=done).wire()))

    job = await world.jobs.get(world.project, world.job_id)
    assert (job.state, job.cells_done, job.result) == ("succeeded", 3, {"answer": 42})
    events = [(e.type, e.attempt, e.data) for e in await world.jobs.events(world.project, world.job_id)]
    assert events[2:] == [
        ("progress", 1, {"done": 2, "total": 3}),
        ("log", 1, {"stream": "stdout", "text": "hi\n"}),
        ("progress", 5, {"done": 3, "total": 3}),  # recorded, but another attempt's: the job did not move for it
        ("state", 1, {"state": "succeeded", "status": "succeeded", "error": None}),
    ]
    assert world.jobs.dispatch_wanted.is_set()


async def test_a_superseded_attempt_finishing_late_is_logged_not_a_second_final_state(world: World) -> None:
    """Under load a worker can look dead, have its job taken over, and still finish it: the job keeps one
    final state, its current attempt's (the 200-job test saw 'succeeded' twice before this)."""
    takeover = await ownership.claim(world.db, world.job_id, "w-2")  # w-1 never heartbeat: presumed dead
    assert isinstance(takeover, ownership.Claim) and takeover.attempt == 2
    late = Finished(status="failed", error=RunErrorData(ename="ValueError", evalue="old", traceback=[]))
    await world.jobs.apply_event(
        message(FinishedEvent(job_id=world.job_id, attempt=1, worker_id="w-1", data=late).wire())
    )
    assert (await world.jobs.get(world.project, world.job_id)).state == "running"
    done = Finished(status="succeeded", result={"answer": 42})
    await world.jobs.apply_event(
        message(FinishedEvent(job_id=world.job_id, attempt=2, worker_id="w-2", data=done).wire())
    )

    job = await world.jobs.get(world.project, world.job_id)
    assert (job.state, job.attempts, job.result) == ("succeeded", 2, {"answer": 42})
    events = await world.jobs.events(world.project, world.job_id)
    assert [e.data["state"] for e in events if e.type == "state"] == ["queued", "running", "retrying", "running",
                                                                       "succeeded"]  # fmt: skip
    assert [(e.attempt, e.data["text"]) for e in events if e.type == "log"] == [
        (1, "attempt 1 finished (failed) after it had been superseded; ignored\n")
    ]


async def test_a_failed_attempt_keeps_its_error_and_where_it_stopped(world: World) -> None:
    who = {"job_id": world.job_id, "attempt": 1, "worker_id": "w-1"}
    error = RunErrorData(cell_index=1, ename="ValueError", evalue="bad", traceback=["tb"], execution_count=1)
    await world.jobs.apply_event(message(FinishedEvent(**who, data=Finished(status="timed_out", error=error,
                                                                            cells_done=1, cells_total=3)).wire()))  # fmt: skip
    job = await world.jobs.get(world.project, world.job_id)
    assert job.state == "failed" and job.cells_done == 1
    assert job.error is not None and (job.error.cell_index, job.error.ename, job.error.evalue) == (
        1,
        "ValueError",
        "bad",
    )


async def test_a_malformed_event_is_rejected_not_retried(world: World) -> None:
    with pytest.raises(Reject, match="not a job event: log.data.stream: Input should be"):
        await world.jobs.apply_event(message({"job_id": world.job_id, "attempt": 1, "worker_id": "w-1",
                                              "type": "log", "data": {"stream": "stdin", "text": "x"}}))  # fmt: skip


async def test_the_consumer_dead_letters_a_malformed_event_and_goes_on_with_the_next(world: World) -> None:
    bus = PostgresBus(world.db)
    handled: list[str] = []
    both = asyncio.Event()

    async def handler(m: Message) -> None:
        try:
            await world.jobs.apply_event(m)
        finally:
            handled.append(m.id)
            if len(handled) == 2:
                both.set()

    async with bus:
        bad = await bus.publish(JOB_EVENTS, world.job_id, {"job_id": world.job_id, "type": "log"})
        good = await bus.publish(JOB_EVENTS, world.job_id, LogEvent(job_id=world.job_id, attempt=1, worker_id="w-1",
                                                                     data=LogOutput(stream="stdout", text="ok")).wire())  # fmt: skip
        async with bus.consume([JOB_EVENTS], "agiflow-backend") as consumer:
            running = asyncio.create_task(consumer.run(handler))
            async with asyncio.timeout(60):
                await both.wait()
            await consumer.close()
            await asyncio.wait({running}, timeout=30)
        [dead] = await dead_letters(world.db, JOB_EVENTS)
    assert handled == [bad, good]  # one job's events in order: the bad one did not block the next for ever
    assert dead.message.id == bad and dead.error is not None and dead.error.startswith("not a job event")
    logs = [e.data for e in await world.jobs.events(world.project, world.job_id) if e.type == "log"]
    assert logs == [{"stream": "stdout", "text": "ok"}]
