"""What a rule's metric is worth over its window, read where the platform keeps it.

Trace metrics come from the span store's rollups (``SpanStore.metrics``, day points: at most two for a window
under a day). Over several points, error rate and cost are exact sums; latency p95 is the highest point's
p95 (the rollups' histograms are merged per point, not across the points here) and a score mean is the mean
of the points' means: both exact for a window inside one UTC day. The job metrics read the jobs tables.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from agiflow_lab.db.database import Database
from agiflow_lab.jobs import store as jobs_store
from agiflow_lab.traces.annotations import AnnotationStore
from agiflow_lab.traces.store import SpanStore

DAY = 86_400.0


class MetricReader:
    def __init__(self, db: Database, spans: SpanStore, annotations: AnnotationStore, stale_after: float) -> None:
        self.db = db
        self.spans = spans
        self.annotations = annotations
        self.stale_after = stale_after

    async def value(self, rule: dict[str, Any], now: datetime) -> float | None:
        """None: no data in the window (no spans, no scheduled run results)."""
        metric, project_id = rule["metric"], rule["project_id"]
        start, end = now - timedelta(seconds=rule["window_seconds"]), now
        if metric in ("error_rate", "latency_p95_ms", "cost_per_day"):
            measure = {"error_rate": "errors", "latency_p95_ms": "latency", "cost_per_day": "cost"}[metric]
            points = await self.spans.metrics(project_id, start=start, end=end, bucket="day",
                                              measures={"count", measure})  # type: ignore[arg-type]  # fmt: skip
            count = sum(p.count or 0 for p in points)
            if metric == "error_rate":
                return None if count == 0 else sum(p.errors or 0 for p in points) / count
            if metric == "latency_p95_ms":
                p95s = [p.latency_p95_ms for p in points if p.latency_p95_ms is not None]
                return float(max(p95s)) if p95s else None
            return float(sum(p.cost_usd or 0.0 for p in points) * DAY / rule["window_seconds"])
        if metric == "score_mean":
            means = await self.annotations.score_means(project_id, start=start, end=end, bucket="day")
            values = [float(m[rule["score_name"]]) for m in means.values() if rule["score_name"] in m]
            return sum(values) / len(values) if values else None
        async with self.db.connection() as conn:
            if metric == "job_failures":
                cur = await conn.execute(
                    """SELECT count(*)::float AS v FROM control.jobs
                        WHERE project_id = %s AND state = 'failed' AND finished_at >= %s AND finished_at < %s""",
                    (project_id, start, end),
                )
            elif metric == "eval_pass_rate":
                cur = await conn.execute(
                    """SELECT avg(r.passed::int)::float AS v
                         FROM control.schedule_firings f JOIN analytics.eval_results r ON r.run_id = f.run_id
                        WHERE f.project_id = %s AND r.finished_at >= %s AND r.finished_at < %s""",
                    (project_id, start, end),
                )
            elif metric == "queue_lag_seconds":
                counts = await jobs_store.queue_counts(conn, project_id)
                return 0.0 if counts["oldest"] is None else float(counts["oldest"])
            else:  # live_workers: the deployment's
                workers = await jobs_store.workers(conn, self.stale_after)
                return float(sum(bool(w["alive"]) for w in workers))
            row = await cur.fetchone()
        return None if row is None or row["v"] is None else float(row["v"])
