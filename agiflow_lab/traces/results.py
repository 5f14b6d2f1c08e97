"""What the span store returns: the types the trace and metrics APIs serve.

Kept apart from the store so that the API layer (and the SDK's mirror of it) can import them without the
loader's psycopg dumpers or the store's SQL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from agiflow_lab.traces.records import SpanKind, SpanRecord, SpanStatus, SpanType

Bucket = Literal["minute", "hour", "day"]
GroupBy = Literal["model", "prompt_version", "span_name", "user"]
Measure = Literal["count", "errors", "latency", "tokens", "cost"]
TraceStatus = Literal["ok", "error"]
ScoreType = Literal["numeric", "categorical", "boolean"]
ScoreSource = Literal["human", "api", "eval"]
ScoreValue = bool | float | str
ALL_MEASURES: frozenset[Measure] = frozenset({"count", "errors", "latency", "tokens", "cost"})


class TraceSummary(BaseModel):
    trace_id: str
    name: str = Field(description="The root span's name; the earliest span's until the root arrives")
    start_time: datetime
    end_time: datetime
    duration_ms: float
    status: TraceStatus = Field(description="error when any span of the trace failed")
    has_root: bool
    span_count: int
    error_count: int
    tokens_in: int
    tokens_out: int
    cost_usd: float = Field(description="Of the priced spans; see unpriced_count")
    unpriced_count: int = Field(description="Spans naming a model that had no price: cost_usd leaves them out")
    models: list[str]
    session_id: str | None
    user_id: str | None
    prompt_name: str | None
    prompt_version: int | None
    input_preview: str | None
    output_preview: str | None


class MetricPoint(BaseModel):
    time: datetime = Field(description="Start of the bucket (UTC)")
    group: dict[str, str | int | None] = Field(description="The group_by dimension's value(s); {} without one")
    count: int | None = None
    errors: int | None = None
    error_rate: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    unpriced_count: int | None = None
    score_means: dict[str, float] | None = Field(
        None, description="Mean of each numeric or boolean score given in the bucket (measure `scores`)"
    )


class GroupSummary(BaseModel):
    """One session's or user's traces, summed over the time range asked for."""

    id: str = Field(description="The session id or user id")
    trace_count: int
    first_seen: datetime = Field(description="Start of its earliest trace in the range")
    last_seen: datetime = Field(description="Start of its latest trace in the range")
    error_count: int = Field(description="Traces with a failed span")
    tokens_in: int
    tokens_out: int
    cost_usd: float
    unpriced_count: int


class Score(BaseModel):
    id: uuid.UUID
    trace_id: str | None = Field(description="null only for an agiflow-sdk alias no stored trace carries yet")
    trace_alias: str | None
    span_id: str | None
    name: str
    data_type: ScoreType
    value: bool | float | str
    source: ScoreSource
    comment: str | None
    author: str
    created_at: datetime


class TraceSpanEvent(BaseModel):
    name: str
    time: datetime
    attributes: dict[str, Any]


class TraceSpan(BaseModel):
    """One stored span. Ids are lowercase hex; times are ISO 8601 UTC to the microsecond (nanoseconds
    would not survive a JavaScript number), with ``duration_ms`` computed from the exact nanoseconds."""

    trace_id: str
    span_id: str
    parent_span_id: str | None = Field(description="null for the root span")
    name: str
    kind: SpanKind
    start_time: datetime
    end_time: datetime
    duration_ms: float
    status: SpanStatus
    status_message: str | None
    service_name: str | None
    scope_name: str | None
    span_type: SpanType
    model: str | None
    provider: str | None
    input: str | None
    output: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None = Field(description="null: unpriced (unknown model or no token counts), not free")
    session_id: str | None
    user_id: str | None
    tags: list[str]
    prompt_name: str | None
    prompt_version: int | None
    attributes: dict[str, Any]
    events: list[TraceSpanEvent]
    resource_attributes: dict[str, Any]
    updates: list[dict[str, Any]] = Field(
        default_factory=list, description="agiflow-sdk update_span() bodies for this span, oldest first"
    )


class TraceDetail(BaseModel):
    trace_id: str
    spans: list[TraceSpan] = Field(description="In start order (then span id)")
    scores: list[Score] = Field(
        default_factory=list, description="The trace's and its spans' scores, newest first (first page only)"
    )
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next spans; null at the end")


@dataclass(frozen=True, slots=True)
class SpanPage:
    """Spans of one trace in start order; pass ``next_cursor`` back for the next page (None: no more)."""

    spans: list[SpanRecord]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Purged:
    partitions: list[str] = field(default_factory=list)
    spans: int = 0
    traces: int = 0
    rollups: int = 0
