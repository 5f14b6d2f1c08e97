"""The ``job-events`` message: what a running job reports back, as one typed contract.

Workers report a job's progress, log output and outcome as ``job-events`` bus messages, and the
backend applies them (``JobService.apply_event``). The message used to be a dict built in two places
and read by a string switch; it is now one pydantic model on both sides, so a field is renamed in one
place and a malformed message is refused where it is read instead of failing half-way through applying.

The wire JSON is unchanged (``job_id``, ``attempt``, ``worker_id``, ``type`` and ``data``), so messages
already in flight during an upgrade still parse, and the event rows that WebSocket clients and the
labextension read carry the same ``data`` as before.

``record_event`` is the one way to send one: through the transactional outbox (a broker outage delays
events, never loses them), optionally in the same transaction as the writes it reports on, and retried
on a fixed ladder so that a database blip does not lose finished work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter

from agiflow_lab.bus import outbox
from agiflow_lab.bus.topics import JOB_EVENTS
from agiflow_lab.db.database import Conn, Database

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # then one last try, whose failure is the caller's


class CellProgress(BaseModel):
    """How far a notebook got, in cells; it moves the job's ``cells_done``."""

    done: int = Field(ge=0)
    total: int = Field(ge=0)


class ItemProgress(BaseModel):
    """How far an evaluation run got, in dataset items; shown live, never mistaken for cells."""

    unit: Literal["items"] = "items"
    run_id: str
    done: int = Field(ge=0)
    total: int = Field(ge=0)
    passed: int = Field(ge=0)
    errors: int = Field(ge=0)


def _progress_unit(value: Any) -> str:
    """No unit: cells (what workers always sent); an unknown unit matches neither and is refused."""
    unit = value.get("unit") if isinstance(value, dict) else getattr(value, "unit", None)
    return "cells" if unit is None else str(unit)


Progress = Annotated[
    Annotated[CellProgress, Tag("cells")] | Annotated[ItemProgress, Tag("items")], Discriminator(_progress_unit)
]


class LogOutput(BaseModel):
    stream: Literal["stdout", "stderr"]
    text: str


class RunErrorData(BaseModel):
    """Where and why a run stopped (``agiflow_lab_workers.runner.RunError`` on the wire)."""

    cell_index: int | None = None
    ename: str
    evalue: str = ""
    traceback: list[str] = Field(default_factory=list)
    execution_count: int | None = None


class Finished(BaseModel):
    """The attempt's outcome; ``cells_done`` is absent when the run never started (no notebook)."""

    status: Literal["succeeded", "failed", "cancelled", "timed_out"]
    error: RunErrorData | None = None
    result: Any = None
    # Left out rather than null when unknown: a backend of the previous release reads them with int().
    cells_done: int | None = Field(None, ge=0, exclude_if=lambda v: v is None)
    cells_total: int | None = Field(None, ge=0, exclude_if=lambda v: v is None)


class JobEventMessage(BaseModel):
    """What every job event carries: which attempt of which job, reported by which worker. The
    attempt fences it: the backend applies an event to the job only while that attempt is current."""

    job_id: str
    attempt: int = Field(ge=1)
    worker_id: str

    def wire(self) -> dict[str, Any]:
        """The message body on the bus."""
        return self.model_dump(mode="json")


class ProgressEvent(JobEventMessage):
    type: Literal["progress"] = "progress"
    data: Progress


class LogEvent(JobEventMessage):
    type: Literal["log"] = "log"
    data: LogOutput


class FinishedEvent(JobEventMessage):
    type: Literal["finished"] = "finished"
    data: Finished


AnyJobEvent = Annotated[ProgressEvent | LogEvent | FinishedEvent, Field(discriminator="type")]
_ANY = TypeAdapter[AnyJobEvent](AnyJobEvent)


def parse_job_event(payload: Any) -> ProgressEvent | LogEvent | FinishedEvent:
    """Read a ``job-events`` message body; raises ``pydantic.ValidationError`` for anything else."""
    return _ANY.validate_python(payload)


Write = Callable[[Conn], Awaitable[None]]


async def enqueue_event(conn: Conn, message: JobEventMessage) -> str:
    """Put the event on the outbox in the caller's transaction (keyed by job: one job's events stay in order)."""
    return await outbox.enqueue(conn, JOB_EVENTS, message.job_id, message.wire())


async def record_event(db: Database, message: JobEventMessage | None, *, with_writes: Write | None = None) -> None:
    """Commit ``message`` (if any) together with ``with_writes`` (the results it reports, say), retrying
    the whole transaction on the ladder: the work is done and must not be lost to a database restart.
    The last failure is raised to the caller."""
    what = f"{getattr(message, 'type', 'writes')} of job {message.job_id}" if message else "writes"
    for delay in (*RETRY_DELAYS, None):
        try:
            async with db.transaction() as conn:
                if with_writes is not None:
                    await with_writes(conn)
                if message is not None:
                    await enqueue_event(conn, message)
            return
        except Exception:
            if delay is None:
                raise
            log.warning("cannot record the %s; retrying in %.1f s", what, delay, exc_info=True)
            await asyncio.sleep(delay)
