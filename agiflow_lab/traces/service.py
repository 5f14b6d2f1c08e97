"""Reading stored traces: who may, which project, and the API's shape of a trace's spans.

The store answers by project id and returns ``SpanRecord`` (times as unix nanoseconds, the writer's shape);
this service checks READ on ``agiflow:traces`` first, resolves the slug, and turns spans into ``TraceSpan``
so the handlers stay a parse and a call. It needs no bus, so ``Platform`` builds it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.authz.policy import READ
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.paging import MAX_LIMIT, Page
from agiflow_lab.errors import InvalidInput, NotFound
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.traces.annotations import AnnotationStore
from agiflow_lab.traces.ingest import RESOURCE
from agiflow_lab.traces.live import SpanActivity
from agiflow_lab.traces.records import SpanRecord
from agiflow_lab.traces.results import (
    ALL_MEASURES,
    Bucket,
    GroupBy,
    GroupSummary,
    Measure,
    MetricPoint,
    Score,
    TraceDetail,
    TraceSpan,
    TraceSpanEvent,
    TraceStatus,
    TraceSummary,
)
from agiflow_lab.traces.scores import ScoreName
from agiflow_lab.traces.scores import to_api as score_to_api
from agiflow_lab.traces.store import MAX_TRACE_PAGE, Grouping, ScoreFilter, SpanStore

# Where agiflow-sdk's associate_trace(id, span_id) puts the aliases its report_score/update_span name.
TRACE_ALIAS = "agiflow.association.properties.trace_alias"
SPAN_ALIAS = "agiflow.association.properties.span_alias"
TRACE_ID = re.compile(r"[0-9a-f]{32}")  # what the receiver stores (records.py): lowercase only, so no aliases


class TraceQuery(BaseModel):
    """Filters of the trace list, ANDed; ``text`` searches the root's input and output previews."""

    model_config = ConfigDict(extra="forbid")
    start: AwareDatetime | None = Field(None, description="Traces starting at or after this time (ISO 8601)")
    end: AwareDatetime | None = Field(None, description="Traces starting before this time (ISO 8601)")
    status: TraceStatus | None = Field(None, description="error: some span failed; ok: none did")
    model: str | None = Field(None, description="Traces with a span calling this model")
    name: str | None = Field(None, description="The root span's name, exactly")
    user: str | None = None
    session: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = Field(None, ge=1)
    min_latency_ms: float | None = Field(None, ge=0)
    text: str | None = Field(None, max_length=512, description="Case-insensitive, in the input/output previews")
    score_name: ScoreName | None = Field(None, description="Traces with a score of this name ...")
    score_min: float | None = Field(None, description="... at least this (numeric and boolean scores: 0/1)")
    score_max: float | None = Field(None, description="... at most this")
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


BUCKET_SPAN: dict[Bucket, timedelta] = {
    "minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
}  # fmt: skip
SCORES = "scores"
MAX_BUCKETS = 10_000  # per group: a month of minutes is 43,200 points, more than any chart draws
DEFAULT_RANGE = timedelta(days=7)


class Range(BaseModel):
    """[start, end): without ``end``, now; without ``start``, a week before ``end``."""

    model_config = ConfigDict(extra="forbid")
    start: AwareDatetime | None = Field(None, description="Inclusive (ISO 8601); default: a week before end")
    end: AwareDatetime | None = Field(None, description="Exclusive (ISO 8601); default: now")

    def bounds(self) -> tuple[datetime, datetime]:
        end = self.end or datetime.now(UTC)
        start = self.start or end - DEFAULT_RANGE
        if start >= end:
            raise InvalidInput("start must be before end", {"field": "start"})
        return start, end


class GroupQuery(Range):
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class MetricsQuery(Range):
    bucket: Bucket = Field("hour", description="Width of each point, in UTC")
    group_by: GroupBy | None = Field(None, description="One series per value of this dimension")
    measures: str = Field(
        ",".join(sorted(ALL_MEASURES)),
        max_length=200,
        description="Comma-separated: count, errors (with error_rate), latency (p50/p95/p99), tokens, cost; "
        "scores (means by score name, without group_by)",
    )

    def measure_set(self) -> tuple[set[Measure], bool]:
        """The span measures asked for, and whether score means are."""
        asked = {m.strip() for m in self.measures.split(",") if m.strip()}
        known = ALL_MEASURES | {SCORES}
        if not asked or asked - known:
            bad = ", ".join(sorted(asked - known)) or "none given"
            raise InvalidInput(f"measures must be among {', '.join(sorted(known))} ({bad})", {"field": "measures"})
        if SCORES in asked and self.group_by is not None:
            raise InvalidInput("scores cannot be grouped: ask for them without group_by", {"field": "measures"})
        return asked - {SCORES}, SCORES in asked  # type: ignore[return-value]  # checked against known above


class Metrics(BaseModel):
    start: datetime
    end: datetime
    bucket: Bucket
    group_by: GroupBy | None
    points: list[MetricPoint] = Field(description="By time, then group; buckets without spans are absent")


class SpanQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(1000, ge=1, le=MAX_TRACE_PAGE)
    cursor: str | None = None


def _time(ns: int) -> datetime:
    """Exact to the microsecond: a float of seconds since 1970 would already round away microseconds."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1000)


def to_api(span: SpanRecord) -> TraceSpan:
    return TraceSpan(
        trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id, name=span.name,
        kind=span.kind, start_time=_time(span.start_ns), end_time=_time(span.end_ns),
        duration_ms=(span.end_ns - span.start_ns) / 1e6, status=span.status, status_message=span.status_message,
        service_name=span.service_name, scope_name=span.scope_name, span_type=span.span_type, model=span.model,
        provider=span.provider, input=span.input, output=span.output, tokens_in=span.tokens_in,
        tokens_out=span.tokens_out, cost_usd=span.cost_usd, session_id=span.session_id, user_id=span.user_id,
        tags=list(span.tags), prompt_name=span.prompt_name, prompt_version=span.prompt_version,
        attributes=span.attributes, resource_attributes=span.resource_attributes,
        events=[TraceSpanEvent(name=e["name"], time=_time(e["time_ns"]), attributes=e["attributes"])
                for e in span.events],
    )  # fmt: skip


class TraceService:
    def __init__(
        self,
        projects: ProjectService,
        authz: Authorizer,
        store: SpanStore,
        annotations: AnnotationStore,
        activity: SpanActivity,
    ) -> None:
        self.projects = projects
        self.authz = authz
        self.store = store
        self.annotations = annotations
        self.activity = activity

    async def follow(self, actor: Actor, project: str) -> AsyncIterator[None]:
        """Wake-ups when the project stores spans (see ``live``); 403/404 before the first one."""
        self.authz.check(actor, project, RESOURCE, READ)
        return self.activity.follow(await self.projects.resolve_id(project))

    async def list(self, actor: Actor, project: str, query: TraceQuery) -> Page[TraceSummary]:
        """Newest first; 403 unless ``actor`` may read the project's traces, 404 if it does not exist."""
        self.authz.check(actor, project, RESOURCE, READ)
        project_id = await self.projects.resolve_id(project)
        q = query
        score = None
        if q.score_name is not None:
            score = ScoreFilter(q.score_name, q.score_min, q.score_max)
        elif q.score_min is not None or q.score_max is not None:
            raise InvalidInput("score_min and score_max need score_name", {"field": "score_name"})
        return await self.store.list_traces(
            project_id, start=q.start, end=q.end, status=q.status, model=q.model, name=q.name, user=q.user,
            session=q.session, prompt_name=q.prompt_name, prompt_version=q.prompt_version,
            min_latency_ms=q.min_latency_ms, text=q.text, score=score, limit=q.limit, cursor=q.cursor,
        )  # fmt: skip

    async def groups(self, actor: Actor, project: str, by: Grouping, query: GroupQuery) -> Page[GroupSummary]:
        """Sessions or users seen in the range, most recent first."""
        self.authz.check(actor, project, RESOURCE, READ)
        start, end = query.bounds()
        project_id = await self.projects.resolve_id(project)
        return await self.store.list_groups(
            project_id, by, start=start, end=end, limit=query.limit, cursor=query.cursor
        )

    async def metrics(self, actor: Actor, project: str, query: MetricsQuery) -> Metrics:
        """Time series from the rollups; 400 naming ``bucket`` when the range holds more than
        ``MAX_BUCKETS`` of them (ask for hours or days instead)."""
        self.authz.check(actor, project, RESOURCE, READ)
        start, end = query.bounds()
        measures, with_scores = query.measure_set()
        if (end - start) / BUCKET_SPAN[query.bucket] > MAX_BUCKETS:
            raise InvalidInput(
                f"more than {MAX_BUCKETS} {query.bucket}s in the range: choose a longer bucket or a shorter range",
                {"field": "bucket"},
            )
        project_id = await self.projects.resolve_id(project)
        points: list[MetricPoint] = []
        if measures:
            points = await self.store.metrics(
                project_id, start=start, end=end, bucket=query.bucket, group_by=query.group_by, measures=measures
            )
        if with_scores:
            means = await self.annotations.score_means(project_id, start=start, end=end, bucket=query.bucket)
            for point in points:
                point.score_means = means.pop(point.time, {})
            points += [MetricPoint(time=t, group={}, score_means=m) for t, m in means.items()]
            points.sort(key=lambda p: p.time)
        return Metrics(start=start, end=end, bucket=query.bucket, group_by=query.group_by, points=points)

    async def get(self, actor: Actor, project: str, trace_id: str, query: SpanQuery) -> TraceDetail:
        """One page of a trace's spans; 400 naming ``trace_id`` for a malformed id (checked before the
        database sees it), 404 when the project has no such trace."""
        self.authz.check(actor, project, RESOURCE, READ)
        if not TRACE_ID.fullmatch(trace_id):
            raise InvalidInput("trace_id must be 32 lowercase hex digits", {"field": "trace_id"})
        project_id = await self.projects.resolve_id(project)
        page = await self.store.get_trace(project_id, trace_id, cursor=query.cursor, limit=query.limit)
        if not page.spans:  # a cursor the store issued always has spans after it, so this is an unknown trace
            raise NotFound(f"trace {trace_id} not found in project {project!r}", {"trace_id": trace_id})
        spans = [to_api(s) for s in page.spans]
        await self._with_updates(project_id, spans)
        scores: list[Score] = []
        if query.cursor is None:
            aliases = {a for s in spans if isinstance(a := s.attributes.get(TRACE_ALIAS), str)}
            await self.annotations.bind_aliases(project_id, trace_id, aliases)
            found = await self.annotations.list_scores(project_id, trace_id=trace_id, limit=MAX_LIMIT)
            scores = [score_to_api(r) for r in found.items]
        return TraceDetail(trace_id=trace_id, spans=spans, scores=scores, next_cursor=page.next_cursor)

    async def _with_updates(self, project_id: int, spans: Sequence[TraceSpan]) -> None:
        """agiflow-sdk's late updates, found by span id or by the alias the span carries."""
        refs: dict[str, TraceSpan] = {s.span_id: s for s in spans}
        refs.update({a: s for s in spans if isinstance(a := s.attributes.get(SPAN_ALIAS), str)})
        for ref, bodies in (await self.annotations.span_updates(project_id, list(refs))).items():
            refs[ref].updates.extend(bodies)
