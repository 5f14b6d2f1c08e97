"""The job contract: what a client submits and what it gets back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

JobState = Literal["queued", "dispatched", "running", "retrying", "succeeded", "failed", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
BUILTIN_PREFIX = "builtin:"
CONTENTS_PREFIX = "contents:"


class JobSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notebook: str = Field(
        description="`builtin:<name>` for a task in notebooks/, or `contents:<path>` for a notebook in Jupyter",
        examples=["builtin:hello", "contents:reports/daily.ipynb"],
        min_length=1,
        max_length=1024,
    )
    parameters: dict[str, Any] = Field(default_factory=dict, description="Injected as Python literals by papermill")
    idempotency_key: str | None = Field(None, max_length=200, description="Submitting twice with one key gives one job")
    timeout_seconds: float = Field(3600, gt=0, le=7 * 24 * 3600, description="Whole-job limit enforced by the worker")
    max_attempts: int = Field(3, ge=1, le=20)

    @field_validator("notebook")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if not value.startswith((BUILTIN_PREFIX, CONTENTS_PREFIX)):
            raise ValueError("must start with 'builtin:' or 'contents:'")
        if value.startswith(CONTENTS_PREFIX) and not value.endswith(".ipynb"):
            raise ValueError("a contents notebook must be an .ipynb file")
        return value


class JobError(BaseModel):
    cell_index: int | None = None
    ename: str
    evalue: str = ""
    traceback: list[str] = Field(default_factory=list)


class Job(BaseModel):
    id: str
    project: str
    notebook: str
    parameters: dict[str, Any]
    state: JobState
    idempotency_key: str | None
    submitted_by: str
    worker_id: str | None
    attempts: int
    max_attempts: int
    timeout_seconds: float
    cells_done: int
    cells_total: int | None
    error: JobError | None
    result: Any = None
    cancel_requested: bool
    created_at: datetime
    dispatched_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    run_id: str | None = Field(None, description="The evaluation run this job executes, if it is one")
    run_name: str | None = Field(None, description="That run's name")


class JobEvent(BaseModel):
    id: int
    job_id: str
    project: str
    attempt: int
    type: Literal["state", "progress", "log"]
    data: dict[str, Any]
    at: datetime


class WorkerStatus(BaseModel):
    id: str
    hostname: str
    pid: int
    topics: list[str]
    concurrency: int
    running: int
    started_at: datetime
    heartbeat_at: datetime
    alive: bool


class BusStatus(BaseModel):
    backend: str = Field(description="The configured bus: postgres or kafka")
    state: Literal["unknown", "up", "down"] = Field(description="Whether this API process reaches the bus now")
    since: datetime = Field(description="When the bus entered this state (as this process saw it)")
    error: str | None = Field(None, description="Why it is down (server admins only: it names hosts)")


class QueueStatus(BaseModel):
    project: str | None = Field(None, description="The project the figures are for; null: the whole deployment")
    bus: BusStatus | None = Field(None, description="The message bus as this API process sees it")
    workers: list[WorkerStatus] = Field(description="Worker processes (host names, pids): server admins only")
    workers_alive: int = Field(description="Workers heartbeating now, across the deployment")
    queued: int = Field(description="Jobs waiting for a concurrency slot")
    dispatched: int = Field(description="Jobs on the bus, not yet picked up by a worker")
    running: int
    oldest_queued_seconds: float | None = Field(description="How long the oldest waiting job has waited (lag)")
