"""Messages between an evaluation job's kernel and its worker's job API.

The kernel runs user code (``python`` evaluators), so it holds no database URL and no secret key: it
asks the worker for the run it was started for, pages of pending items, model completions, and hands
back result batches. These are the typed bodies of those calls, shared by both sides.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agiflow_lab.evals.models import RunAggregates

JOB_API_VERSION = "v1"
# Where a job's kernel finds its worker's job API and its token (set by the worker, read by the kernel).
ENV_URL = "AGIFLOW_JOB_API"
ENV_TOKEN = "AGIFLOW_JOB_TOKEN"


class JudgeSpec(BaseModel):
    """What an ``llm_judge`` evaluator needs besides its spec; the connection is used through the job API."""

    connection: str
    model: str
    params: dict[str, Any]
    prompt_type: Literal["text", "chat"]
    template: Any


class RunSpec(BaseModel):
    run_id: str
    project: str
    name: str
    prompt_type: Literal["text", "chat"]
    template: Any
    connection: str
    model: str
    params: dict[str, Any]
    items_total: int
    concurrency: int
    max_retries: int
    evaluators: list[dict[str, Any]]
    judges: dict[str, JudgeSpec] = Field(default_factory=dict, description="by evaluator name")
    price_overrides: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="the project's prices per million tokens: model → (input, output)"
    )
    output_dataset: str | None = Field(None, description="batch inference: write the outputs as this dataset")


class Totals(BaseModel):
    done: int
    passed: int
    errors: int


class ItemsPage(BaseModel):
    items: list[dict[str, Any]]
    next_after: int | None = Field(description="ordinal to continue after; null at the end of the version")


class Progress(BaseModel):
    done: int
    passed: int
    errors: int


class ResultsBatch(BaseModel):
    results: list[dict[str, Any]]
    progress: Progress | None = None


class OutputWritten(BaseModel):
    """The dataset version holding a run's outputs (``POST /run/output``)."""

    dataset: str
    version: int
    item_count: int
    written: bool = Field(description="false: an earlier attempt had written it, and this is that version")


class CompleteCall(BaseModel):
    connection: str
    messages: list[dict[str, str]]
    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    json_output: bool = False


class CompleteReply(BaseModel):
    """Either a completion or the error the worker's retries ended in (never an HTTP error: a model
    failure is part of the item's row)."""

    text: str | None = None
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: float | None = None
    attempts: int = 1
    error: str | None = None
    status: int | None = None


class CallFrame(BaseModel):
    """Kernel → worker on the calls socket: one model call; ``id`` pairs it with its reply."""

    id: int = Field(ge=0)
    call: CompleteCall


class ReplyFrame(BaseModel):
    """Worker → kernel: the reply to call ``id`` (in the order calls finish, not the order they were sent),
    or why the job API refused it (``status`` as an HTTP status, e.g. 403 for a connection the run did not pin)."""

    id: int
    reply: CompleteReply | None = None
    status: int | None = None
    error: str | None = None


class ReportData(BaseModel):
    run: dict[str, Any]
    aggregates: RunAggregates
    score_histograms: dict[str, list[int]]
    latency_edges: tuple[float, float]
    latency_histogram: list[int]
    worst: list[dict[str, Any]]
