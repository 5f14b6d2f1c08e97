"""The schedule contract: what a client creates or edits, and what it reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from agiflow_lab.evals.models import RunSubmit
from agiflow_lab.jobs.models import JobState, JobSubmit
from agiflow_lab.schedules.timing import check_cron, check_timezone

MissedPolicy = Literal["skip", "run_once", "catch_up"]
OverlapPolicy = Literal["allow", "skip", "queue"]
FiringOutcome = Literal["started", "skipped", "queued", "failed"]
MAX_INTERVAL = 366 * 24 * 3600
NEXT_FIRE_TIMES = 5

T = TypeVar("T", JobSubmit, RunSubmit)


class ScheduleFields(BaseModel):
    """What both a new schedule and an edit may say; cross-field rules are checked on the result."""

    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(None, max_length=2000)
    cron: str | None = Field(
        None, max_length=200, examples=["0 3 * * *", "*/15 * * * 1-5", "@daily"],
        description="Five-field cron expression in `timezone`; give this or `interval_seconds`",
    )  # fmt: skip
    timezone: str | None = Field(None, max_length=64, examples=["UTC", "Europe/Berlin"],
                                 description="IANA time zone of the cron expression (default UTC)")  # fmt: skip
    interval_seconds: int | None = Field(None, gt=0, le=MAX_INTERVAL, description="Fixed interval; or give `cron`")
    start_at: AwareDatetime | None = Field(
        None,
        description="No tick before this; an interval's ticks are counted from it (default: one interval from now)",
    )
    job: JobSubmit | None = Field(None, description="Target: a notebook job, the body of POST .../jobs")
    eval: RunSubmit | None = Field(
        None,
        description="Target: an evaluation run, the body of POST .../evals/runs; a prompt label and a dataset "
        "without a version are resolved when each tick fires (e.g. `qa@production` on the latest dataset version)",
    )
    missed: MissedPolicy | None = Field(
        None, description="Ticks missed while no server ran: skip them, run_once (the latest), or catch_up"
    )
    max_catch_up: int | None = Field(None, ge=1, le=100, description="With missed=catch_up: the latest N missed ticks")
    misfire_grace_seconds: int | None = Field(
        None, ge=1, le=86_400, description="A tick this late still counts as on time and fires (default 60)"
    )
    overlap: OverlapPolicy | None = Field(
        None, description="While the previous firing still runs: allow another, skip (recorded), or queue one"
    )
    pass_rate_gate: float | None = Field(
        None, ge=0, le=1, description="With an eval target: a run this schedule started that ends with a pass rate "
        "below this is announced to the project's channels (schedule.pass_rate_below_gate); null: no gate",
    )  # fmt: skip
    paused: bool | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @field_validator("job", "eval")
    @classmethod
    def _no_key(cls, value: T | None) -> T | None:
        if value is not None and value.idempotency_key is not None:
            raise ValueError("idempotency_key is set by the schedule for each tick (schedule:<id>:<tick>)")
        return value


class ScheduleCreate(ScheduleFields):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")


class ScheduleUpdate(ScheduleFields):
    """PATCH: only the fields sent change; send null to clear `cron` or `interval_seconds` when switching."""


class Firing(BaseModel):
    id: int
    schedule_id: str
    tick: datetime = Field(description="The time the schedule named (for a manual run: when it was asked for)")
    manual: bool = Field(description="Started by run-now rather than by a tick")
    outcome: FiringOutcome = Field(
        description="started: its job (and run) was submitted; skipped: overlap=skip while the previous one ran "
        "(or one was queued already); queued: waits for the previous one (overlap=queue); failed: could not start"
    )
    reason: str | None = None
    job_id: str | None = None
    run_id: str | None = None
    job_state: JobState | None = Field(None, description="The started job's state now")
    fired_at: datetime
    started_at: datetime | None = None


class Schedule(BaseModel):
    id: str
    project: str
    name: str
    description: str
    cron: str | None
    timezone: str
    interval_seconds: int | None
    start_at: datetime | None
    target: Literal["job", "eval"]
    job: JobSubmit | None
    eval: RunSubmit | None
    missed: MissedPolicy
    max_catch_up: int
    misfire_grace_seconds: int
    overlap: OverlapPolicy
    pass_rate_gate: float | None
    paused: bool
    next_fire_at: datetime | None = Field(description="The next tick the scheduler handles; null while paused")
    next_fire_times: list[datetime] = Field(description=f"The next {NEXT_FIRE_TIMES} ticks (none while paused)")
    missed_ticks: int = Field(description="Ticks missed (server down) that the missed-tick policy did not fire")
    last_firing: Firing | None = None
    created_by: str
    created_at: datetime
    updated_at: datetime
