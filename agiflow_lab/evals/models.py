"""The evaluation-run contract: what a client submits, and what it reads back.

A run pins what it used at submit time (prompt version, dataset version, connection and model), so
re-reading or comparing it later shows what actually ran even after labels have moved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from agiflow_lab.datasets.models import DatasetName
from agiflow_lab.evals.evaluators.specs import EvaluatorSpec, check_unique_names
from agiflow_lab.jobs.models import JobError, JobState


class PromptRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    label: str | None = Field(None, description="Default: production; resolved and pinned at submit")
    version: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> PromptRef:
        if self.label is not None and self.version is not None:
            raise ValueError("give label or version, not both")
        return self


class DatasetRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    version: int | None = Field(None, gt=0, description="Default: the latest version, pinned at submit")


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connection: str = Field(min_length=1, max_length=128, examples=["echo", "openai"])
    model: str | None = Field(None, max_length=200, description="Default: the prompt's model, then the connection's")
    params: dict[str, Any] = Field(
        default_factory=dict, description="temperature, max_tokens, ... (over the prompt version's parameters)"
    )


class RunSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field("", max_length=200, description="Default: '<prompt> v<version> × <dataset> v<version>'")
    prompt: PromptRef
    dataset: DatasetRef
    model: ModelRef
    output_dataset: DatasetName | None = Field(
        None,
        description="Batch inference: when the run succeeds, every item with its model output is written as this "
        "dataset; a new version if it exists. With it, evaluators may be left out",
    )  # declared before evaluators, so their check below sees it
    evaluators: list[EvaluatorSpec] = Field(
        default_factory=list, max_length=20, validate_default=True,
        description="At least one, unless the run writes an output_dataset (then: scored and saved)",
    )  # fmt: skip
    concurrency: int = Field(8, ge=1, le=256, description="Model calls in flight at once")
    max_retries: int = Field(4, ge=0, le=10, description="Per item, on 429, 5xx and timeouts, with backoff")
    request_timeout: float = Field(60, gt=0, le=3600, description="Seconds per model call")
    timeout_seconds: float = Field(24 * 3600, gt=0, le=7 * 24 * 3600, description="Whole-run limit")
    idempotency_key: str | None = Field(None, max_length=200)

    @field_validator("evaluators")
    @classmethod
    def _scored_or_saved(cls, evaluators: list[EvaluatorSpec], info: ValidationInfo) -> list[EvaluatorSpec]:
        if not evaluators and info.data.get("output_dataset") is None:
            raise ValueError("give at least one evaluator, or an output_dataset to write the outputs to")
        return evaluators

    @model_validator(mode="after")
    def _unique_evaluator_names(self) -> RunSubmit:
        check_unique_names(self.evaluators)
        return self


class EvaluatorAggregate(BaseModel):
    name: str
    type: str
    threshold: float
    scored: int = Field(description="Items this evaluator scored (errors and failed model calls excluded)")
    passed: int
    pass_rate: float | None = Field(description="passed / items finished; null before any item finished")
    mean_score: float | None
    errors: int


class RunAggregates(BaseModel):
    items_total: int
    items_done: int
    passed: int
    pass_rate: float | None = Field(
        description="Items where every evaluator passed / items finished; null for a run without evaluators"
    )
    mean_score: float | None
    errors: int = Field(description="Items whose model call (or rendering) failed")
    evaluator_errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    tokens_in: int
    tokens_out: int
    cost: float | None = Field(description="USD; null when any finished item is unpriced")
    unpriced_items: int
    evaluators: list[EvaluatorAggregate]


class Run(BaseModel):
    id: str
    project: str
    name: str
    state: JobState
    job_id: str
    prompt: dict[str, Any] = Field(description="{name, version, ref}: the pinned version and what was asked")
    dataset: dict[str, Any] = Field(description="{name, version}")
    model: dict[str, Any] = Field(description="{connection, kind, model, params, builtin}")
    evaluators: list[dict[str, Any]]
    concurrency: int
    max_retries: int
    request_timeout: float
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: JobError | None
    aggregates: RunAggregates
    output_dataset: str | None = Field(None, description="Batch inference: the dataset the outputs are written as")
    output_version: int | None = Field(None, description="Its version holding this run's outputs, once written")


class ItemScore(BaseModel):
    score: float | None
    passed: bool | None
    explanation: str
    error: str | None = None


class ItemResult(BaseModel):
    item_id: str
    ordinal: int
    input: dict[str, Any]
    expected: Any = None
    rendered: Any = None
    output: str | None
    error: str | None
    latency_ms: float | None
    tokens_in: int | None
    tokens_out: int | None
    cost: float | None
    attempts: int
    scores: dict[str, ItemScore]
    score: float | None
    passed: bool
    trace_id: str | None = Field(
        None, description="The item's trace (GET /projects/{project}/traces/{trace_id}), once the writers stored it"
    )


Change = Literal["regressed", "improved", "unchanged", "missing"]


class ItemComparison(BaseModel):
    item_id: str
    input: dict[str, Any]
    expected: Any = None
    change: Change = Field(
        description="The verdict of the last run against the first (the baseline): regressed is pass → fail, "
        "improved is fail → pass; a score that moves while the verdict stays is unchanged"
    )
    score_delta: float | None = Field(
        None, description="The last run's score minus the baseline's; null when either has no score"
    )
    results: list[ItemResult | None] = Field(description="One per run, in the order asked; null if not in that run")


class Comparison(BaseModel):
    runs: list[Run]
    regressed: int = Field(description="Items that passed in the baseline and fail in the last run")
    improved: int = Field(description="Items that failed in the baseline and pass in the last run")
    unchanged: int = Field(description="Items with the same verdict in both, whatever their scores")
    missing: int = Field(0, description="Items in only one of the two runs")
    score_up: int = Field(0, description="Unchanged items whose score rose in the last run")
    score_down: int = Field(0, description="Unchanged items whose score fell in the last run")
    items: list[ItemComparison] = Field(description="Changed items first page; follow next_cursor for more")
    next_cursor: str | None = None
