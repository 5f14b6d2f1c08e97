"""Trace retention: each project keeps its traces for its own number of days, partitions go whole.

Partitions hold every project's spans of one day, so the cheap part (dropping whole days) goes as far as
the project that keeps traces longest allows; each project that keeps less then has its own older rows
deleted from the days still there (``SpanStore.drop_partitions_before``), and its scores with them. A
scheduler calls ``purge_traces`` (``agiflow-lab traces purge`` until system schedules exist); it is safe
to run at any time and from several processes (a dropped day is recreated by the next load that needs it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from agiflow_lab.db.database import Database
from agiflow_lab.projects import store as projects
from agiflow_lab.traces.annotations import AnnotationStore
from agiflow_lab.traces.store import SpanStore

DEFAULT_DAYS = 30


@dataclass
class TracesPurged:
    partitions: list[str] = field(default_factory=list)
    spans: int = 0
    traces: int = 0
    rollups: int = 0
    scores: int = 0


async def purge_traces(
    db: Database, spans: SpanStore, *, default_days: int = DEFAULT_DAYS, today: date | None = None
) -> TracesPurged:
    """Forget every project's traces older than its retention (``default_days`` where it has none)."""
    annotations = AnnotationStore(db)
    today = today or datetime.now(UTC).date()
    async with db.connection() as conn:
        days = {project: kept or default_days for project, kept in (await projects.trace_retentions(conn)).items()}
    longest = max([default_days, *days.values()])
    total = TracesPurged()
    shared = await spans.drop_partitions_before(today - timedelta(days=longest))
    total.partitions, total.traces, total.rollups = list(shared.partitions), shared.traces, shared.rollups
    for project_id, kept in sorted(days.items()):
        cutoff = today - timedelta(days=kept)
        if kept < longest:
            own = await spans.drop_partitions_before(cutoff, project_id=project_id)
            total.spans += own.spans
            total.traces += own.traces
            total.rollups += own.rollups
        total.scores += await annotations.purge_scores(project_id, datetime(*cutoff.timetuple()[:3], tzinfo=UTC))
    return total
