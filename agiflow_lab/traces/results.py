"""What the span store returns: the types the trace and metrics APIs serve.

Kept apart from the store so that the API layer (and the SDK's mirror of it) can import them without the
loader's psycopg dumpers or the store's SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from agiflow_lab.traces.records import SpanRecord

Bucket = Literal["minute", "hour", "day"]
GroupBy = Literal["model", "prompt_version", "span_name", "user"]
Measure = Literal["count", "errors", "latency", "tokens", "cost"]
TraceStatus = Literal["ok", "error"]
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
