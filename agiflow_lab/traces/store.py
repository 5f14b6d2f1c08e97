"""The span store: where the span writer puts spans, and what the trace and metrics APIs read.

``SpanStore`` is the one interface (load, trace list, one trace, metrics, retention), so a column store
can take the analytics load later without touching the receiver, the writer or the API.
``PostgresSpanStore`` keeps three tables (``0009_traces.sql``): the raw spans in daily partitions, one
summary row per trace, and minute rollups with latency histograms. ``loading`` writes a batch (once, at
speed, for at-least-once delivery); here a batch gets its partitions and its transaction, and is tried
again when a deadlock or a partition dropped by another process's retention rolls that back.

Traces are listed from the summaries and metrics are read from the rollups: neither scans raw spans.
``results`` holds the types returned, ``reading`` the conversion of rows into them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from psycopg import errors as pg_errors
from pydantic import AwareDatetime, Field

from agiflow_lab.core.paging import Cursor, KeyText, Page, check_limit
from agiflow_lab.db.database import Database
from agiflow_lab.errors import InvalidInput
from agiflow_lab.traces import loading, reading, text_index
from agiflow_lab.traces.partitions import EPOCH_ORDINAL, NS_PER_DAY, Partitions, day_of_ns
from agiflow_lab.traces.records import SpanRecord
from agiflow_lab.traces.results import (
    ALL_MEASURES,
    Bucket,
    GroupBy,
    GroupSummary,
    Measure,
    MetricPoint,
    Purged,
    SpanPage,
    TraceStatus,
    TraceSummary,
)

log = logging.getLogger(__name__)

MAX_TRACE_PAGE = 5000  # spans per get_trace page
LOAD_ATTEMPTS = 3

TraceIdKey = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{32}$")]
SpanIdKey = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{16}$")]
# (start_time, trace_id) of a page's last trace, newest first; (start_time, span_id) in a trace, oldest first.
TRACE_CURSOR = Cursor[tuple[datetime, str]](tuple[AwareDatetime, TraceIdKey])
SPAN_CURSOR = Cursor[tuple[datetime, str]](tuple[AwareDatetime, SpanIdKey])
# (last_seen, id) of a page's last session or user, most recently seen first.
GROUP_CURSOR = Cursor[tuple[datetime, str]](tuple[AwareDatetime, KeyText])
Grouping = Literal["session", "user"]
_GROUP_COLUMNS: dict[Grouping, str] = {"session": "session_id", "user": "user_id"}


class SpanStore(Protocol):
    async def load(self, project_id: int, spans: Sequence[SpanRecord], *, redelivery: bool = False) -> int:
        """Store a batch; returns how many spans were new (a redelivered span counts 0)."""
        ...

    async def list_traces(
        self,
        project_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        status: TraceStatus | None = None,
        model: str | None = None,
        name: str | None = None,
        user: str | None = None,
        session: str | None = None,
        prompt_name: str | None = None,
        prompt_version: int | None = None,
        min_latency_ms: float | None = None,
        text: str | None = None,
        score: ScoreFilter | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TraceSummary]: ...

    async def get_trace(
        self, project_id: int, trace_id: str, *, cursor: str | None = None, limit: int = 1000
    ) -> SpanPage: ...

    async def get_spans(self, project_id: int, keys: Sequence[tuple[str, str]]) -> list[SpanRecord]:
        """The spans named by (trace id, span id) that are stored, in no particular order."""
        ...

    async def list_groups(
        self,
        project_id: int,
        by: Grouping,
        *,
        start: datetime,
        end: datetime,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[GroupSummary]: ...

    async def metrics(
        self,
        project_id: int,
        *,
        start: datetime,
        end: datetime,
        bucket: Bucket = "minute",
        group_by: GroupBy | None = None,
        measures: Collection[Measure] = ALL_MEASURES,
    ) -> list[MetricPoint]: ...

    async def drop_partitions_before(self, day: date, *, project_id: int | None = None) -> Purged: ...


@dataclass(frozen=True, slots=True)
class ScoreFilter:
    """Traces with a score named ``name`` (between ``low`` and ``high`` when given: numeric and boolean)."""

    name: str
    low: float | None = None
    high: float | None = None


def _ceil_hour(t: datetime) -> datetime:
    floor = t.replace(minute=0, second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(hours=1)


def _within(scope: text_index.Scope | None) -> tuple[list[str], list[datetime]]:
    """The conditions (and their values) keeping a list query to ``scope``."""
    if scope is None:
        return [], []
    conditions, values = [], []
    if scope.low is not None:
        conditions.append("start_time >= %s")
        values.append(scope.low)
    if scope.high is not None:
        conditions.append("start_time < %s")
        values.append(scope.high)
    return conditions, values


class _Retry(Exception):
    """The batch's transaction was rolled back for a reason that a second try can get past."""


class PostgresSpanStore:
    def __init__(
        self, db: Database, *, max_age: timedelta = timedelta(days=90), max_ahead: timedelta = timedelta(days=1)
    ) -> None:
        """``max_age`` and ``max_ahead`` bound the days a span may start on (UTC, from today): every day
        is a partition, so a sender with a wrong clock (or a hostile one) must not create thousands of
        tables. Spans outside are not stored; the receiver should refuse them first (``accepts``)."""
        self.db = db
        self.partitions = Partitions(db)
        self.max_age = max_age
        self.max_ahead = max_ahead

    def accepts(self, start_ns: int, today: date | None = None) -> bool:
        low, high = self._window(today or datetime.now(UTC).date())
        return low <= start_ns < high

    def _window(self, today: date) -> tuple[int, int]:
        """[first, last) unix nanosecond a span may start at: whole days, as partitions are."""
        first = (today - self.max_age).toordinal() - EPOCH_ORDINAL
        last = (today + self.max_ahead).toordinal() - EPOCH_ORDINAL + 1
        return first * NS_PER_DAY, last * NS_PER_DAY

    # ------------------------------------------------------------ load

    async def load(self, project_id: int, spans: Sequence[SpanRecord], *, redelivery: bool = False) -> int:
        """Store a batch once; returns how many of its spans were new.

        ``redelivery``: the caller knows the batch may have been stored already (the bus delivers it
        again): skip the direct COPY, which would write the batch only to find it there and undo it.
        Without it a stored span is still found, at that cost."""
        low, high = self._window(datetime.now(UTC).date())
        batch = sorted((s for s in spans if low <= s.start_ns < high), key=loading.span_key)
        if len(batch) < len(spans):
            log.warning(
                "%s spans of project %s start outside the stored days; dropped", len(spans) - len(batch), project_id
            )
        if not batch:
            return 0
        days = {day_of_ns(ns) for ns in {s.start_ns - s.start_ns % NS_PER_DAY for s in batch}}
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            await self.partitions.ensure(days)
            try:
                return await self._load_once(project_id, batch, direct=not redelivery)
            except _Retry as retry:
                if attempt == LOAD_ATTEMPTS:
                    raise retry.__cause__ or retry from None
                if isinstance(retry.__cause__, pg_errors.CheckViolation):
                    self.partitions.forget(days)  # dropped by another process's retention: make it again
                log.info("span batch retried (%s)", retry.__cause__)
        raise AssertionError("unreachable")

    async def _load_once(self, project_id: int, batch: list[SpanRecord], *, direct: bool) -> int:
        rows = loading.encode(project_id, batch)
        try:
            async with self.db.connection() as conn, conn.transaction():
                return await loading.write_batch(conn, project_id, batch, rows, direct=direct)
        except pg_errors.CheckViolation as exc:
            # analytics.spans has no CHECK constraints: this is "no partition of relation found for row",
            # a day this process thinks exists and another process's retention has dropped.
            raise _Retry() from exc
        except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure) as exc:
            raise _Retry() from exc

    # ------------------------------------------------------------ reads

    async def list_traces(
        self,
        project_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        status: TraceStatus | None = None,
        model: str | None = None,
        name: str | None = None,
        user: str | None = None,
        session: str | None = None,
        prompt_name: str | None = None,
        prompt_version: int | None = None,
        min_latency_ms: float | None = None,
        text: str | None = None,
        score: ScoreFilter | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TraceSummary]:
        """Newest first (by the trace's earliest span), a keyset page of ``limit``, filters ANDed."""
        check_limit(limit)
        where = ["project_id = %s"]
        params: list[Any] = [project_id]

        def match(condition: str, value: Any) -> None:
            where.append(condition)
            params.append(value)

        if start is not None:
            match("start_time >= %s", start)
        if end is not None:
            match("start_time < %s", end)
        if status == "error":
            where.append("error_count > 0")
        elif status == "ok":
            where.append("error_count = 0")
        if model is not None:
            match("%s = ANY (models)", model)
        if name is not None:
            match("name = %s", name)
        if user is not None:
            match("user_id = %s", user)
        if session is not None:
            match("session_id = %s", session)
        if prompt_name is not None:
            match("prompt_name = %s", prompt_name)
        if prompt_version is not None:
            match("prompt_version = %s", prompt_version)
        if min_latency_ms is not None:
            match("duration_ms >= %s", min_latency_ms)
        if text:
            # Only in the hours whose trigram filter may hold the text (text_index.scopes, below).
            match(f"{text_index.PREVIEWS} ILIKE %s", f"%{reading.like_literal(text)}%")
        if score is not None:
            # Scores live beside the summaries (0010_scores.sql); scores_by_trace finds a trace's by name.
            condition = "s.name = %s"
            params.append(score.name)
            for bound, op in ((score.low, ">="), (score.high, "<=")):
                if bound is not None:
                    condition += f" AND s.value_number {op} %s"
                    params.append(bound)
            where.append(
                "EXISTS (SELECT 1 FROM analytics.scores s WHERE s.project_id = trace_summaries.project_id"
                f" AND s.trace_id = trace_summaries.trace_id AND {condition})"
            )
        after = TRACE_CURSOR.decode(cursor)
        upper = end
        if after is not None:
            where.append("(start_time, trace_id) < (%s, %s)")
            params += [after[0], bytes.fromhex(after[1])]
            upper = after[0] + loading.ONE_US if end is None else min(end, after[0] + loading.ONE_US)
        rows: list[dict[str, Any]] = []
        async with self.db.connection() as conn:
            scopes = [None] if not text else await text_index.scopes(conn, project_id, text, start, upper)
            for scope in scopes:  # newest first, until the page is full
                bounds, values = _within(scope)
                cur = await conn.execute(
                    f"""SELECT {reading.SUMMARY_COLUMNS} FROM analytics.trace_summaries
                         WHERE {" AND ".join(where + bounds)}
                         ORDER BY start_time DESC, trace_id DESC LIMIT %s""",
                    (*params, *values, limit + 1 - len(rows)),
                )
                rows += await cur.fetchall()
                if len(rows) > limit:
                    break
        return Page(
            items=[reading.summary(r) for r in rows[:limit]],
            next_cursor=TRACE_CURSOR.next(rows, limit, lambda r: (r["start_time"], r["trace_id"].hex())),
        )

    async def get_trace(
        self, project_id: int, trace_id: str, *, cursor: str | None = None, limit: int = 1000
    ) -> SpanPage:
        """The spans of a trace, by start time (then span id), ``limit`` at a time.

        The trace's summary gives its time range, so only the partitions of its days are searched
        (a trace is found by the primary key's prefix in each). An unknown trace has no spans."""
        check_limit(limit, MAX_TRACE_PAGE)
        trace = reading.trace_key(trace_id)
        after = SPAN_CURSOR.decode(cursor)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT start_time, end_time FROM analytics.trace_summaries WHERE project_id = %s AND trace_id = %s",
                (project_id, trace),
            )
            span = await cur.fetchone()
            if span is None:
                return SpanPage([], None)
            where = "project_id = %s AND trace_id = %s AND start_time BETWEEN %s AND %s"
            params: list[Any] = [project_id, trace, span["start_time"], span["end_time"]]
            if after is not None:
                where += " AND (start_time, span_id) > (%s, %s)"
                params += [after[0], bytes.fromhex(after[1])]
            cur = await conn.execute(
                f"""SELECT {reading.SPAN_READ_COLUMNS} FROM analytics.spans WHERE {where}
                     ORDER BY start_time, span_id LIMIT %s""",
                (*params, limit + 1),
            )
            rows = await cur.fetchall()
        return SpanPage(
            [reading.span(r) for r in rows[:limit]],
            SPAN_CURSOR.next(rows, limit, lambda r: (r["start_time"], r["span_id"].hex())),
        )

    async def get_spans(self, project_id: int, keys: Sequence[tuple[str, str]]) -> list[SpanRecord]:
        """Each trace's summary bounds the start times searched, so the primary key finds every span in
        the partitions of its trace's days."""
        if not keys:
            return []
        traces = [reading.trace_key(t) for t, _ in keys]
        spans = [bytes.fromhex(s) for _, s in keys]
        columns = ", ".join(f"s.{c}" for c in loading.SPAN_COLUMNS if c != "project_id")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"""SELECT {columns}
                      FROM unnest(%s::bytea[], %s::bytea[]) AS k(trace_id, span_id)
                      JOIN analytics.trace_summaries t ON t.project_id = %s AND t.trace_id = k.trace_id
                      JOIN analytics.spans s ON s.project_id = %s AND s.trace_id = k.trace_id
                                            AND s.span_id = k.span_id
                                            AND s.start_time BETWEEN t.start_time AND t.end_time""",
                (traces, spans, project_id, project_id),
            )
            return [reading.span(r) for r in await cur.fetchall()]

    async def list_groups(
        self,
        project_id: int,
        by: Grouping,
        *,
        start: datetime,
        end: datetime,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[GroupSummary]:
        """Sessions or users with traces starting in [start, end), most recently seen first.

        Summed from the trace summaries in the range (found through ``trace_summaries_by_time``), so a
        range bounds the work: the API defaults to the last week."""
        check_limit(limit)
        column = _GROUP_COLUMNS[by]
        having, params = "", [project_id, start, end]
        after = GROUP_CURSOR.decode(cursor)
        if after is not None:
            having = "HAVING (max(start_time), " + column + ") < (%s, %s)"
            params += [after[0], after[1]]
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"""SELECT {column} AS id, count(*) AS trace_count, min(start_time) AS first_seen,
                           max(start_time) AS last_seen, count(*) FILTER (WHERE error_count > 0) AS error_count,
                           sum(tokens_in)::bigint AS tokens_in, sum(tokens_out)::bigint AS tokens_out,
                           sum(cost_usd) AS cost_usd, sum(unpriced_count)::bigint AS unpriced_count
                      FROM analytics.trace_summaries
                     WHERE project_id = %s AND start_time >= %s AND start_time < %s AND {column} IS NOT NULL
                     GROUP BY {column} {having}
                     ORDER BY max(start_time) DESC, {column} DESC LIMIT %s""",
                (*params, limit + 1),
            )
            rows = await cur.fetchall()
        return Page(
            items=[GroupSummary(**r) for r in rows[:limit]],
            next_cursor=GROUP_CURSOR.next(rows, limit, lambda r: (r["last_seen"], r["id"])),
        )

    async def metrics(
        self,
        project_id: int,
        *,
        start: datetime,
        end: datetime,
        bucket: Bucket = "minute",
        group_by: GroupBy | None = None,
        measures: Collection[Measure] = ALL_MEASURES,
    ) -> list[MetricPoint]:
        """Per ``bucket`` (UTC) and group, from the rollups of [start, end).

        Latency percentiles come from the rollups' histograms summed per point (within
        ``histogram.RELATIVE_ERROR``); asking without "latency" skips that sum, the costly part."""
        if bucket not in ("minute", "hour", "day"):
            raise InvalidInput("bucket must be minute, hour or day", {"field": "bucket"})
        if group_by is not None and group_by not in reading.GROUPS:
            raise InvalidInput(f"group_by must be one of {', '.join(reading.GROUPS)}", {"field": "group_by"})
        wanted = set(measures)
        if unknown := wanted - ALL_MEASURES:
            raise InvalidInput(f"unknown measures: {', '.join(sorted(unknown))}", {"field": "measures"})
        dim, columns = reading.GROUPS[group_by] if group_by else reading.UNGROUPED
        groups = tuple(name for name, _ in columns)
        dims = "".join(f", {source} AS {name}" for name, source in columns)
        keys = "".join(f", {name}" for name in groups)
        hist = ""
        if "latency" in wanted:
            # The sum keeps bucket numbers as subscripts: its lower bound is its first bucket. (Postgres
            # computes the two identical aggregates once.)
            hist = (
                ", analytics.histogram_sum(latency_hist) AS hist"
                ", array_lower(analytics.histogram_sum(latency_hist), 1) AS lo"
            )
        # Minute points read the minute rows; hour and day points the hour rows (0012_dimension_rollups.sql
        # says why). A range that starts or ends inside an hour is read from the minute rows at its edges.
        if bucket == "minute":
            sources = [(1, start, end)]
        else:  # UTC hours: a +05:30 offset would put the boundaries half an hour off
            start, end = start.astimezone(UTC), end.astimezone(UTC)
            first = _ceil_hour(start)
            last = max(first, end.replace(minute=0, second=0, microsecond=0))
            sources = [(1, start, min(first, end)), (60, first, last), (1, last, end)]
        ranges = [(width, low, high) for width, low, high in sources if low < high]
        if not ranges:
            return []
        where = " OR ".join("(width = %s AND at >= %s AND at < %s)" for _ in ranges)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"""SELECT date_trunc(%s, at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t{dims},
                           sum(span_count)::bigint AS n, sum(error_count)::bigint AS errors,
                           sum(tokens_in)::bigint AS tokens_in, sum(tokens_out)::bigint AS tokens_out,
                           sum(cost_usd) AS cost, sum(cost_unpriced_count)::bigint AS unpriced{hist}
                      FROM analytics.span_rollups
                     WHERE project_id = %s AND dim = %s AND ({where})
                     GROUP BY 1{keys} ORDER BY 1{keys}""",
                (bucket, project_id, dim, *(v for r in ranges for v in r)),
            )
            rows = await cur.fetchall()
        return [reading.point(r, groups, wanted) for r in rows]

    # ------------------------------------------------------------ retention

    async def drop_partitions_before(self, day: date, *, project_id: int | None = None) -> Purged:
        """Forget what started before ``day`` (UTC): for every project, or for one.

        Partitions are shared by all projects, so retention works in two steps. Without ``project_id``
        (run it with the cutoff of the project that keeps data longest) whole daily partitions are
        dropped, which is cheap, along with the summaries, rollups and text filters of those days. With
        ``project_id`` (for each project that keeps less) that project's rows before its own cutoff are
        deleted from the partitions still there (the primary key's prefix finds them). A trace that
        started before the cutoff loses its summary even if some of its spans are newer: it is gone from
        the list."""
        cutoff = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if project_id is None:
            dropped = await self.partitions.drop_before(day)
            async with self.db.transaction() as conn:
                traces = await conn.execute("DELETE FROM analytics.trace_summaries WHERE start_time < %s", (cutoff,))
                rollups = await conn.execute("DELETE FROM analytics.span_rollups WHERE at < %s", (cutoff,))
                await conn.execute("DELETE FROM analytics.trace_text_blocks WHERE hour < %s", (cutoff,))
                return Purged(dropped, 0, traces.rowcount, rollups.rowcount)
        async with self.db.transaction() as conn:
            spans = await conn.execute(
                "DELETE FROM analytics.spans WHERE project_id = %s AND start_time < %s", (project_id, cutoff)
            )
            traces = await conn.execute(
                "DELETE FROM analytics.trace_summaries WHERE project_id = %s AND start_time < %s", (project_id, cutoff)
            )
            rollups = await conn.execute(
                "DELETE FROM analytics.span_rollups WHERE project_id = %s AND at < %s", (project_id, cutoff)
            )
            await conn.execute(
                "DELETE FROM analytics.trace_text_blocks WHERE project_id = %s AND hour < %s", (project_id, cutoff)
            )
            return Purged([], spans.rowcount, traces.rowcount, rollups.rowcount)
