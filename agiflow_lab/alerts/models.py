"""The alert contract: rules a client creates, the incidents they open, silences."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Metric = Literal[
    "error_rate", "latency_p95_ms", "cost_per_day", "score_mean", "eval_pass_rate", "job_failures",
    "queue_lag_seconds", "live_workers",
]  # fmt: skip
Comparison = Literal[">", ">=", "<", "<="]
RuleState = Literal["ok", "pending", "firing", "resolved"]
MAX_SECONDS = 31 * 24 * 3600


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    description: str = Field("", max_length=2000)
    metric: Metric = Field(
        description="error_rate, latency_p95_ms, cost_per_day, score_mean (with score_name): the project's traces; "
        "eval_pass_rate: evaluation runs started by schedules; job_failures: jobs failed in the window; "
        "queue_lag_seconds: the oldest queued job's wait; live_workers: workers alive (the window is not used)"
    )
    score_name: str | None = Field(
        None, min_length=1, max_length=200, validate_default=True, description="With metric=score_mean"
    )
    comparison: Comparison
    threshold: float = Field(allow_inf_nan=False)
    window_seconds: int = Field(300, ge=1, le=MAX_SECONDS, description="The metric is read over [now - window, now)")
    for_seconds: int = Field(0, ge=0, le=MAX_SECONDS, description="Breached this long (pending) before it fires")
    enabled: bool = True

    @field_validator("score_name")
    @classmethod
    def _score_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (info.data.get("metric") == "score_mean") != (value is not None):
            raise ValueError("score_name is required with metric=score_mean, and only with it")
        return value


class RuleUpdate(BaseModel):
    """PATCH: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(None, max_length=2000)
    comparison: Comparison | None = None
    threshold: float | None = Field(None, allow_inf_nan=False)
    window_seconds: int | None = Field(None, ge=1, le=MAX_SECONDS)
    for_seconds: int | None = Field(None, ge=0, le=MAX_SECONDS)
    enabled: bool | None = None


class Incident(BaseModel):
    id: int
    rule: str
    state: Literal["firing", "resolved"]
    started_at: datetime
    resolved_at: datetime | None
    start_value: float | None
    end_value: float | None
    peak_value: float | None = Field(description="The furthest past the threshold while firing")
    notified: bool = Field(description="false: a silence held its notifications back")


class Rule(BaseModel):
    id: str
    project: str
    name: str
    description: str
    metric: Metric
    score_name: str | None
    comparison: Comparison
    threshold: float
    window_seconds: int
    for_seconds: int
    enabled: bool
    state: RuleState
    pending_since: datetime | None
    last_value: float | None = Field(description="The metric at the last evaluation (null: no data)")
    evaluated_at: datetime | None
    silenced_until: datetime | None = Field(description="The end of the latest silence that covers this rule")
    created_by: str
    created_at: datetime
    updated_at: datetime


class SilenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str | None = Field(None, max_length=128, description="A rule's name; none: every rule of the project")
    ends_at: AwareDatetime = Field(description="No notification of the rule(s) until then")
    reason: str = Field("", max_length=2000)


class Silence(BaseModel):
    id: str
    rule: str | None
    ends_at: datetime
    reason: str
    active: bool
    created_by: str
    created_at: datetime
