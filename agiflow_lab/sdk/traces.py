"""``client.traces`` and the monitoring reads: traces, spans, sessions, users and metrics as DataFrames.

Lists follow the API's cursor pages (``Transport.items``) up to ``limit`` rows in all; times come back as
tz-aware UTC timestamps. Time arguments take aware datetimes or ISO 8601 text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from agiflow_lab.sdk.frames import frame, iso, model_frame
from agiflow_lab.sdk.trace import Trace
from agiflow_lab.sdk.transport import Transport, segment
from agiflow_lab.traces.results import (
    ALL_MEASURES,
    Bucket,
    GroupBy,
    GroupSummary,
    Measure,
    MetricPoint,
    TraceDetail,
    TraceStatus,
    TraceSummary,
)

if TYPE_CHECKING:
    import pandas as pd

When = datetime | str | None
MetricMeasure = Measure | Literal["scores"]
DEFAULT_LIMIT = 1000
LIST_PAGE = 200  # the API's largest list page (core.paging.MAX_LIMIT)
SPAN_PAGE = 1000  # the span pages' default and maximum size (GET .../traces/{id})
MEASURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "count": ("count",),
    "errors": ("errors", "error_rate"),
    "latency": ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"),
    "tokens": ("tokens_in", "tokens_out"),
    "cost": ("cost_usd", "unpriced_count"),
}


class Traces:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _path(self, resource: str) -> str:
        return f"projects/{segment(self.project)}/{resource}"

    def list(
        self,
        *,
        start: When = None,
        end: When = None,
        status: TraceStatus | None = None,
        model: str | None = None,
        name: str | None = None,
        user: str | None = None,
        session: str | None = None,
        prompt_name: str | None = None,
        prompt_version: int | None = None,
        min_latency_ms: float | None = None,
        text: str | None = None,
        score_name: str | None = None,
        score_min: float | None = None,
        score_max: float | None = None,
        limit: int | None = DEFAULT_LIMIT,
    ) -> pd.DataFrame:
        """Traces, newest first, one row each (``TraceSummary``'s fields); the filters are ANDed and mean what
        the API's do (``score_min``/``score_max`` bound the score named ``score_name``). ``limit`` caps the rows
        fetched across pages (None: every matching trace)."""
        params = {
            "start": iso("start", start), "end": iso("end", end), "status": status, "model": model, "name": name,
            "user": user, "session": session, "prompt_name": prompt_name, "prompt_version": prompt_version,
            "min_latency_ms": min_latency_ms, "text": text, "score_name": score_name, "score_min": score_min,
            "score_max": score_max,
        }  # fmt: skip
        rows = self._t.items(self._path("traces"), params, limit=limit, page_size=LIST_PAGE)
        return model_frame((TraceSummary.model_validate(r) for r in rows), TraceSummary)

    def get(self, trace_id: str) -> Trace:
        """Every span of one trace (all pages) and its scores; ``NotFound`` when the project has no such trace."""
        path = f"{self._path('traces')}/{segment(trace_id)}"
        pages = [TraceDetail.model_validate(p) for p in self._t.pages(path, {"limit": SPAN_PAGE})]
        return Trace(trace_id, [s for p in pages for s in p.spans], pages[0].scores)

    def spans(self, trace_id: str) -> pd.DataFrame:
        """One trace's spans, one row each, in start order."""
        return self.get(trace_id).to_dataframe()

    def sessions(self, *, start: When = None, end: When = None, limit: int | None = DEFAULT_LIMIT) -> pd.DataFrame:
        """Sessions seen in [start, end) (default: the last week), most recently seen first."""
        return self._groups("sessions", start, end, limit)

    def users(self, *, start: When = None, end: When = None, limit: int | None = DEFAULT_LIMIT) -> pd.DataFrame:
        """Users seen in [start, end) (default: the last week), most recently seen first."""
        return self._groups("users", start, end, limit)

    def _groups(self, resource: str, start: When, end: When, limit: int | None) -> pd.DataFrame:
        params = {"start": iso("start", start), "end": iso("end", end)}
        rows = self._t.items(self._path(resource), params, limit=limit, page_size=LIST_PAGE)
        return model_frame((GroupSummary.model_validate(r) for r in rows), GroupSummary)

    def metrics(
        self,
        *,
        start: When = None,
        end: When = None,
        bucket: Bucket = "hour",
        group_by: GroupBy | None = None,
        measures: str | Sequence[MetricMeasure] | None = None,
    ) -> pd.DataFrame:
        """Span metrics per ``bucket`` over [start, end) (default: the last week): one row per point, with a
        ``time`` column, the ``group_by`` dimension's column(s) (``prompt_version`` gives ``prompt_name`` and
        ``prompt_version``) and the ``measures``' columns (default: every span measure). ``"scores"`` adds a
        ``score.<name>`` column per score name: the mean of the numeric and boolean scores given in the bucket
        (not with ``group_by``). Buckets without spans (or scores) are absent."""
        wanted = sorted(ALL_MEASURES) if measures is None else _measures(measures)
        params = {
            "start": iso("start", start), "end": iso("end", end), "bucket": bucket, "group_by": group_by,
            "measures": ",".join(wanted),
        }  # fmt: skip
        answer = self._t.request("GET", self._path("metrics"), params=params)
        points = [MetricPoint.model_validate(p) for p in answer["points"]]
        groups = list(dict.fromkeys(k for p in points for k in p.group)) or ([group_by] if group_by else [])
        values = [c for m in wanted for c in MEASURE_COLUMNS.get(m, ())]
        scores = sorted({n for p in points for n in p.score_means or {}})
        rows = (
            {"time": p.time, **p.group, **{c: getattr(p, c) for c in values},
             **{f"score.{n}": (p.score_means or {}).get(n) for n in scores}}
            for p in points
        )  # fmt: skip
        return frame(rows, ["time", *groups, *values, *(f"score.{n}" for n in scores)], times=["time"])


def _measures(measures: str | Sequence[MetricMeasure]) -> list[str]:
    names = measures.split(",") if isinstance(measures, str) else measures
    # Unknown names go to the server as they are: its 400 lists the valid ones.
    return [n.strip() for n in names if n.strip()]
