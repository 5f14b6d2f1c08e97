"""Rows of the store's tables back into results: the columns its queries select and their conversion.

Used by the store's reads only; loading never reads back.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeAlias

from agiflow_lab.errors import InvalidInput
from agiflow_lab.traces import histogram
from agiflow_lab.traces._aggregates import MODEL, PROMPT, SPAN_NAME, USER
from agiflow_lab.traces.loading import EPOCH, ONE_US, SPAN_COLUMNS
from agiflow_lab.traces.records import SpanRecord
from agiflow_lab.traces.results import GroupBy, Measure, MetricPoint, TraceSummary

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")

SUMMARY_COLUMNS = """trace_id, name, start_time, end_time, duration_ms, root_span_id IS NOT NULL AS has_root,
    span_count, error_count, tokens_in, tokens_out, cost_usd, unpriced_count, models, session_id, user_id,
    prompt_name, prompt_version, input_preview, output_preview"""
SPAN_READ_COLUMNS = ", ".join(c for c in SPAN_COLUMNS if c != "project_id")
# Each grouping: its rollup dimension (_aggregates.MODEL ...) and the point's group keys with the rollup
# columns they come from. Without grouping, the model rows: every span is in exactly one of them.
GROUPS: dict[GroupBy, tuple[int, tuple[tuple[str, str], ...]]] = {
    "model": (MODEL, (("model", "value"),)),
    "prompt_version": (PROMPT, (("prompt_name", "value"), ("prompt_version", "version"))),
    "span_name": (SPAN_NAME, (("span_name", "value"),)),
    "user": (USER, (("user_id", "value"),)),
}
UNGROUPED: tuple[int, tuple[tuple[str, str], ...]] = (MODEL, ())
Row: TypeAlias = dict[str, Any]


def summary(r: Row) -> TraceSummary:
    return TraceSummary(
        **{**r, "trace_id": r["trace_id"].hex(), "status": "error" if r["error_count"] else "ok"},
    )


def _ns(t: datetime) -> int:
    return (t - EPOCH) // ONE_US * 1000


def span(r: Row) -> SpanRecord:
    return SpanRecord(
        trace_id=r["trace_id"].hex(), span_id=r["span_id"].hex(),
        parent_span_id=r["parent_span_id"].hex() if r["parent_span_id"] is not None else None,
        name=r["name"], kind=r["kind"], start_ns=_ns(r["start_time"]), end_ns=_ns(r["end_time"]),
        status=r["status"], status_message=r["status_message"], service_name=r["service_name"],
        scope_name=r["scope_name"], span_type=r["span_type"], model=r["model"], provider=r["provider"],
        input=r["input"], output=r["output"], tokens_in=r["tokens_in"], tokens_out=r["tokens_out"],
        cost_usd=r["cost_usd"], session_id=r["session_id"], user_id=r["user_id"], tags=tuple(r["tags"]),
        prompt_name=r["prompt_name"], prompt_version=r["prompt_version"], attributes=r["attributes"],
        events=r["events"], resource_attributes=r["resource_attributes"],
    )  # fmt: skip


def point(r: Row, groups: tuple[str, ...], wanted: set[Measure]) -> MetricPoint:
    n = int(r["n"])
    point = MetricPoint(time=r["t"], group={g: (r[g] if r[g] not in ("", 0) else None) for g in groups})
    if "count" in wanted:
        point.count = n
    if "errors" in wanted:
        point.errors = int(r["errors"])
        point.error_rate = r["errors"] / n if n else None
    if "tokens" in wanted:
        point.tokens_in, point.tokens_out = int(r["tokens_in"]), int(r["tokens_out"])
    if "cost" in wanted:
        point.cost_usd, point.unpriced_count = float(r["cost"]), int(r["unpriced"])
    if "latency" in wanted:
        counts = histogram.from_range(r["lo"], r["hist"]) if r["hist"] is not None else histogram.empty()
        point.latency_p50_ms = histogram.quantile(counts, 0.5)
        point.latency_p95_ms = histogram.quantile(counts, 0.95)
        point.latency_p99_ms = histogram.quantile(counts, 0.99)
    return point


def trace_key(trace_id: str) -> bytes:
    if not _HEX32.fullmatch(trace_id):
        raise InvalidInput("trace_id must be 32 hex digits", {"field": "trace_id"})
    return bytes.fromhex(trace_id)


def like_literal(text: str) -> str:
    """``text`` as a literal inside an ILIKE pattern (backslash is the default escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
