"""The span store: where the span writer puts spans, and what the trace and metrics APIs read.

``SpanStore`` is the one interface (load, trace list, one trace, metrics, retention), so a column store
can take the analytics load later without touching the receiver, the writer or the API.
``PostgresSpanStore`` keeps three tables (``0009_traces.sql``): the raw spans in daily partitions, one
summary row per trace, and minute rollups with latency histograms.

Loading is built for the span writer's at-least-once delivery and for speed, since the database write
is the pipeline's ceiling:
- the batch is binary-COPYed straight into ``analytics.spans`` (one statement, multi-row inserts, no
  staging copy); only when that meets a span already stored (a redelivery, or a span twice in the batch)
  does it fall back to COPY into a temporary table and ``INSERT ... ON CONFLICT DO NOTHING RETURNING``;
- summaries and rollups are then added for exactly the spans inserted, with one set-based upsert each,
  in the same transaction, so a redelivered batch changes nothing and counts are never doubled;
- every statement touches rows in key order, so concurrent loaders of overlapping batches wait for each
  other instead of deadlocking (a deadlock or a dropped partition still gets the batch retried).

Traces are listed from the summaries and metrics are read from the rollups: neither scans raw spans.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol, TypeAlias

from psycopg import errors as pg_errors
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from pydantic import AwareDatetime, BaseModel, Field

from agiflow_lab.core.paging import Cursor, Page, check_limit
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import InvalidInput
from agiflow_lab.traces import histogram
from agiflow_lab.traces.partitions import EPOCH_ORDINAL, NS_PER_DAY, Partitions, day_of_ns
from agiflow_lab.traces.records import SpanRecord

log = logging.getLogger(__name__)

Bucket = Literal["minute", "hour", "day"]
GroupBy = Literal["model", "prompt_version", "span_name", "user"]
Measure = Literal["count", "errors", "latency", "tokens", "cost"]
TraceStatus = Literal["ok", "error"]
ALL_MEASURES: frozenset[Measure] = frozenset({"count", "errors", "latency", "tokens", "cost"})

PREVIEW_CHARS = 500  # of the root's input and output, for the list and its text search
MAX_TRACE_PAGE = 5000  # spans per get_trace page
LOAD_ATTEMPTS = 3

TraceIdKey = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{32}$")]
SpanIdKey = Annotated[str, Field(strict=True, pattern=r"^[0-9a-f]{16}$")]
# (start_time, trace_id) of a page's last trace, newest first; (start_time, span_id) in a trace, oldest first.
TRACE_CURSOR = Cursor[tuple[datetime, str]](tuple[AwareDatetime, TraceIdKey])
SPAN_CURSOR = Cursor[tuple[datetime, str]](tuple[AwareDatetime, SpanIdKey])

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)


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
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[TraceSummary]: ...

    async def get_trace(
        self, project_id: int, trace_id: str, *, cursor: str | None = None, limit: int = 1000
    ) -> SpanPage: ...

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


# ---------------------------------------------------------------- rows for COPY

# The COPY column order; received_at is left to its default (now(), the transaction's time).
SPAN_COLUMNS = (
    "project_id", "trace_id", "span_id", "start_time", "end_time", "duration_ms", "tokens_in", "tokens_out",
    "cost_usd", "prompt_version", "parent_span_id", "name", "kind", "status", "status_message", "service_name",
    "scope_name", "span_type", "model", "provider", "session_id", "user_id", "prompt_name", "tags", "input",
    "output", "attributes", "events", "resource_attributes",
)  # fmt: skip
SPAN_TYPES = (
    "int8", "bytea", "bytea", "timestamptz", "timestamptz", "float8", "int8", "int8",
    "float8", "int4", "bytea", "text", "text", "text", "text", "text",
    "text", "text", "text", "text", "text", "text", "text", "text[]", "text",
    "text", "jsonb", "jsonb", "jsonb",
)  # fmt: skip
_COLUMN_LIST = ", ".join(SPAN_COLUMNS)


class _Encoded(Dumper):
    """A COPY value we have already put in Postgres's binary form.

    For the columns where psycopg's own dumpers cost most: jsonb (``json.dumps`` per value, and one
    resource's attributes, shared by all its spans, would be encoded once per span) and text[] (a
    Python loop per element). Registered under the column's type for the COPY's cursor only; with
    ``set_types`` psycopg picks dumpers by type, so the Python class of the value does not matter."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]


class _EncodedJsonb(_Encoded):
    oid = postgres.types["jsonb"].oid


class _EncodedTextArray(_Encoded):
    oid = postgres.types["text"].array_oid


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one encoder: dumps() makes one a call
_TEXT_OID = postgres.types["text"].oid
_NO_TAGS = struct.pack(">iii", 0, 0, _TEXT_OID)


def _jsonb(value: object) -> bytes:
    """jsonb's binary form: a version byte, then the JSON text."""
    return b"\x01" + (_ENCODER.encode(value).encode() if value else (b"[]" if isinstance(value, list) else b"{}"))


def _text_array(values: tuple[str, ...]) -> bytes:
    """A one-dimensional text[] without NULLs in binary form (ndim, flags, element type, size, lower bound)."""
    if not values:
        return _NO_TAGS
    encoded = [v.encode() for v in values]
    return struct.pack(">iiiii", 1, 0, _TEXT_OID, len(encoded), 1) + b"".join(
        struct.pack(">i", len(e)) + e for e in encoded
    )


def _time(unix_ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=unix_ns // 1000)


def _row(project_id: int, s: SpanRecord, shared: dict[Any, bytes]) -> tuple[Any, ...]:
    """The COPY row of a span; ``shared`` keeps, per batch, the encodings many spans have in common."""
    resource = shared.get(id(s.resource_attributes))
    if resource is None:
        resource = shared[id(s.resource_attributes)] = _jsonb(s.resource_attributes)
    tags = shared.get(s.tags)
    if tags is None:
        tags = shared[s.tags] = _text_array(s.tags)
    return (
        project_id, bytes.fromhex(s.trace_id), bytes.fromhex(s.span_id), _time(s.start_ns), _time(s.end_ns),
        (s.end_ns - s.start_ns) / 1e6, s.tokens_in, s.tokens_out, s.cost_usd, s.prompt_version,
        bytes.fromhex(s.parent_span_id) if s.parent_span_id else None, s.name, s.kind, s.status,
        s.status_message, s.service_name, s.scope_name, s.span_type, s.model, s.provider, s.session_id,
        s.user_id, s.prompt_name, tags, s.input, s.output, _jsonb(s.attributes), _jsonb(s.events), resource,
    )  # fmt: skip


def _key(s: SpanRecord) -> tuple[str, str, int]:
    """The stored key's order (bytea of lowercase hex sorts like the hex), microseconds as stored."""
    return s.trace_id, s.span_id, s.start_ns // 1000


class _Retry(Exception):
    """The batch's transaction was rolled back for a reason that a second try can get past."""


# ---------------------------------------------------------------- the Postgres store


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
        batch = sorted((s for s in spans if low <= s.start_ns < high), key=_key)
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
        shared: dict[Any, bytes] = {}
        rows = [_row(project_id, s, shared) for s in batch]
        try:
            async with self.db.connection() as conn, conn.transaction():
                inserted = await _insert_spans(conn, batch, rows, direct=direct)
                if inserted:
                    await _upsert_summaries(conn, project_id, inserted)
                    await _upsert_rollups(conn, project_id, inserted)
                return len(inserted)
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
            # No index by default (0009_traces.sql says why and gives the trigram index that would serve
            # this expression as written): a scan of the project's summaries in the time range.
            match("(coalesce(input_preview, '') || ' ' || coalesce(output_preview, '')) ILIKE %s", f"%{_like(text)}%")
        after = TRACE_CURSOR.decode(cursor)
        if after is not None:
            where.append("(start_time, trace_id) < (%s, %s)")
            params += [after[0], bytes.fromhex(after[1])]
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"""SELECT {_SUMMARY_COLUMNS} FROM analytics.trace_summaries
                     WHERE {" AND ".join(where)}
                     ORDER BY start_time DESC, trace_id DESC LIMIT %s""",
                (*params, limit + 1),
            )
            rows = await cur.fetchall()
        return Page(
            items=[_summary(r) for r in rows[:limit]],
            next_cursor=TRACE_CURSOR.next(rows, limit, lambda r: (r["start_time"], r["trace_id"].hex())),
        )

    async def get_trace(
        self, project_id: int, trace_id: str, *, cursor: str | None = None, limit: int = 1000
    ) -> SpanPage:
        """The spans of a trace, by start time (then span id), ``limit`` at a time.

        The trace's summary gives its time range, so only the partitions of its days are searched
        (a trace is found by the primary key's prefix in each). An unknown trace has no spans."""
        check_limit(limit, MAX_TRACE_PAGE)
        trace = _trace_id(trace_id)
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
                f"""SELECT {_SPAN_READ_COLUMNS} FROM analytics.spans WHERE {where}
                     ORDER BY start_time, span_id LIMIT %s""",
                (*params, limit + 1),
            )
            rows = await cur.fetchall()
        return SpanPage(
            [_span(r) for r in rows[:limit]],
            SPAN_CURSOR.next(rows, limit, lambda r: (r["start_time"], r["span_id"].hex())),
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
        """Per ``bucket`` (UTC) and group, from the minute rollups of [start, end).

        Latency percentiles come from the rollups' histograms summed per point (within
        ``histogram.RELATIVE_ERROR``); asking without "latency" skips that sum, the costly part."""
        if bucket not in ("minute", "hour", "day"):
            raise InvalidInput("bucket must be minute, hour or day", {"field": "bucket"})
        if group_by is not None and group_by not in _GROUPS:
            raise InvalidInput(f"group_by must be one of {', '.join(_GROUPS)}", {"field": "group_by"})
        wanted = set(measures)
        if unknown := wanted - ALL_MEASURES:
            raise InvalidInput(f"unknown measures: {', '.join(sorted(unknown))}", {"field": "measures"})
        groups = _GROUPS[group_by] if group_by else ()
        dims = "".join(f", {c}" for c in groups)
        hist = ""
        if "latency" in wanted:
            # The sum keeps bucket numbers as subscripts: its lower bound is its first bucket. (Postgres
            # computes the two identical aggregates once.)
            hist = (
                ", analytics.histogram_sum(latency_hist) AS hist"
                ", array_lower(analytics.histogram_sum(latency_hist), 1) AS lo"
            )
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"""SELECT date_trunc(%s, minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t{dims},
                           sum(span_count)::bigint AS n, sum(error_count)::bigint AS errors,
                           sum(tokens_in)::bigint AS tokens_in, sum(tokens_out)::bigint AS tokens_out,
                           sum(cost_usd) AS cost, sum(cost_unpriced_count)::bigint AS unpriced{hist}
                      FROM analytics.span_rollups_minute
                     WHERE project_id = %s AND minute >= %s AND minute < %s
                     GROUP BY 1{dims} ORDER BY 1{dims}""",
                (bucket, project_id, start, end),
            )
            rows = await cur.fetchall()
        return [_point(r, groups, wanted) for r in rows]

    # ------------------------------------------------------------ retention

    async def drop_partitions_before(self, day: date, *, project_id: int | None = None) -> Purged:
        """Forget what started before ``day`` (UTC): for every project, or for one.

        Partitions are shared by all projects, so retention works in two steps. Without ``project_id``
        (run it with the cutoff of the project that keeps data longest) whole daily partitions are
        dropped, which is cheap, along with the summaries and rollups of those days. With ``project_id``
        (for each project that keeps less) that project's rows before its own cutoff are deleted from
        the partitions still there (the primary key's prefix finds them). A trace that started before
        the cutoff loses its summary even if some of its spans are newer: it is gone from the list."""
        cutoff = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if project_id is None:
            dropped = await self.partitions.drop_before(day)
            async with self.db.transaction() as conn:
                traces = await conn.execute("DELETE FROM analytics.trace_summaries WHERE start_time < %s", (cutoff,))
                rollups = await conn.execute("DELETE FROM analytics.span_rollups_minute WHERE minute < %s", (cutoff,))
                return Purged(dropped, 0, traces.rowcount, rollups.rowcount)
        async with self.db.transaction() as conn:
            spans = await conn.execute(
                "DELETE FROM analytics.spans WHERE project_id = %s AND start_time < %s", (project_id, cutoff)
            )
            traces = await conn.execute(
                "DELETE FROM analytics.trace_summaries WHERE project_id = %s AND start_time < %s", (project_id, cutoff)
            )
            rollups = await conn.execute(
                "DELETE FROM analytics.span_rollups_minute WHERE project_id = %s AND minute < %s", (project_id, cutoff)
            )
            return Purged([], spans.rowcount, traces.rowcount, rollups.rowcount)


# ---------------------------------------------------------------- loading helpers


async def _insert_spans(
    conn: Conn, batch: list[SpanRecord], rows: list[tuple[Any, ...]], *, direct: bool
) -> list[SpanRecord]:
    """The spans of ``batch`` that were not stored yet, now stored."""
    if direct:
        try:
            async with conn.transaction():  # a savepoint: a conflict undoes only the direct COPY
                await _copy(conn, "analytics.spans", rows)
            return batch
        except pg_errors.UniqueViolation:
            pass
    await conn.execute("CREATE TEMP TABLE span_staging (LIKE analytics.spans INCLUDING DEFAULTS) ON COMMIT DROP")
    await _copy(conn, "span_staging", rows)
    cur = await conn.execute(
        f"""INSERT INTO analytics.spans ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM span_staging
             ORDER BY trace_id, span_id, start_time
                ON CONFLICT DO NOTHING RETURNING trace_id, span_id, start_time"""
    )
    new = {(r["trace_id"].hex(), r["span_id"].hex(), (r["start_time"] - EPOCH) // ONE_US) for r in await cur.fetchall()}
    inserted = []
    for s in batch:
        key = _key(s)
        if key in new:
            new.discard(key)  # a span twice in the batch was inserted once: count it once
            inserted.append(s)
    return inserted


async def _copy(conn: Conn, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    cur = conn.cursor()
    cur.adapters.register_dumper(None, _EncodedJsonb)
    cur.adapters.register_dumper(None, _EncodedTextArray)
    # table is one of two constants; the column list is SPAN_COLUMNS
    async with cur.copy(f"COPY {table} ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(SPAN_TYPES)
        for row in rows:
            await copy.write_row(row)


@dataclass(slots=True)
class _Trace:
    """What one batch adds to a trace's summary."""

    first: SpanRecord  # the root if the batch has it, else its earliest span
    start_ns: int
    end_ns: int
    spans: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    unpriced: int = 0
    models: set[str] = field(default_factory=set)
    session_id: str | None = None
    user_id: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None


async def _upsert_summaries(conn: Conn, project_id: int, spans: list[SpanRecord]) -> None:
    traces: dict[str, _Trace] = {}
    for s in sorted(spans, key=lambda s: (s.parent_span_id is not None, s.start_ns, s.span_id)):  # roots first
        t = traces.get(s.trace_id)
        if t is None:
            t = traces[s.trace_id] = _Trace(s, s.start_ns, s.end_ns)
        t.start_ns = min(t.start_ns, s.start_ns)
        t.end_ns = max(t.end_ns, s.end_ns)
        t.spans += 1
        t.errors += s.status == "error"
        t.tokens_in += s.tokens_in or 0
        t.tokens_out += s.tokens_out or 0
        if s.cost_usd is not None:
            t.cost += s.cost_usd
        elif s.model is not None:
            t.unpriced += 1
        if s.model is not None:
            t.models.add(s.model)
        if t.session_id is None:
            t.session_id = s.session_id
        if t.user_id is None:
            t.user_id = s.user_id
        if t.prompt_name is None and s.prompt_name is not None:
            t.prompt_name, t.prompt_version = s.prompt_name, s.prompt_version
    rows = list(traces.values())
    models: list[str] = []
    ranges: list[tuple[int, int]] = []  # each trace's models: models[lo:hi] (1-based, inclusive)
    for t in rows:
        ranges.append((len(models) + 1, len(models) + len(t.models)))
        models.extend(sorted(t.models))
    await conn.execute(
        _UPSERT_SUMMARIES,
        (
            project_id, _texts(models),
            _texts(t.first.trace_id for t in rows), _numbers(t.start_ns // 1000 for t in rows),
            _numbers(t.end_ns // 1000 for t in rows),
            _texts(t.first.span_id if t.first.parent_span_id is None else None for t in rows),
            _texts(t.first.name for t in rows), _numbers(t.spans for t in rows), _numbers(t.errors for t in rows),
            _numbers(t.tokens_in for t in rows), _numbers(t.tokens_out for t in rows), _numbers(t.cost for t in rows),
            _numbers(t.unpriced for t in rows), _numbers(lo for lo, _ in ranges), _numbers(hi for _, hi in ranges),
            _texts(t.session_id for t in rows), _texts(t.user_id for t in rows), _texts(t.prompt_name for t in rows),
            _numbers(t.prompt_version for t in rows), _texts(_preview(t.first.input) for t in rows),
            _texts(_preview(t.first.output) for t in rows),
        ),
    )  # fmt: skip


# A batch's rows travel as one array per column: one statement and one plan whatever the batch size, and
# set-based in the database. The models of each trace are the slice [models_lo:models_hi] of one array.
# Times are integer microseconds (a float would round them); ids are hex.
_US = "(timestamptz 'epoch' + {} * interval '1 microsecond')"
# The root's name and previews win; while neither side has the root, the earlier span's.
_FIRST_WINS = """CASE WHEN t.root_span_id IS NOT NULL THEN t.{0}
                      WHEN EXCLUDED.root_span_id IS NOT NULL OR EXCLUDED.start_time < t.start_time THEN EXCLUDED.{0}
                      ELSE t.{0} END"""
_UPSERT_SUMMARIES = f"""
    INSERT INTO analytics.trace_summaries AS t (
        project_id, trace_id, start_time, end_time, root_span_id, name, span_count, error_count, tokens_in,
        tokens_out, cost_usd, unpriced_count, models, session_id, user_id, prompt_name, prompt_version,
        input_preview, output_preview)
    SELECT %s, decode(r.trace_id, 'hex'), {_US.format("r.start_us")}, {_US.format("r.end_us")},
           decode(r.root_span_id, 'hex'), r.name, r.spans, r.errors, r.tokens_in, r.tokens_out, r.cost, r.unpriced,
           coalesce(m.models[r.models_lo:r.models_hi], '{{}}'), r.session_id, r.user_id, r.prompt_name,
           r.prompt_version, r.input_preview, r.output_preview
      FROM (SELECT %s::text[] AS models) AS m,
           unnest(%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::int[], %s::int[], %s::bigint[],
                  %s::bigint[], %s::float8[], %s::int[], %s::int[], %s::int[], %s::text[], %s::text[], %s::text[],
                  %s::int[], %s::text[], %s::text[])
           AS r(trace_id, start_us, end_us, root_span_id, name, spans, errors, tokens_in, tokens_out, cost,
                unpriced, models_lo, models_hi, session_id, user_id, prompt_name, prompt_version, input_preview,
                output_preview)
     ORDER BY r.trace_id
    ON CONFLICT (project_id, trace_id) DO UPDATE SET
        start_time = least(t.start_time, EXCLUDED.start_time),
        end_time = greatest(t.end_time, EXCLUDED.end_time),
        root_span_id = coalesce(t.root_span_id, EXCLUDED.root_span_id),
        name = {_FIRST_WINS.format("name")},
        input_preview = {_FIRST_WINS.format("input_preview")},
        output_preview = {_FIRST_WINS.format("output_preview")},
        span_count = t.span_count + EXCLUDED.span_count,
        error_count = t.error_count + EXCLUDED.error_count,
        tokens_in = t.tokens_in + EXCLUDED.tokens_in,
        tokens_out = t.tokens_out + EXCLUDED.tokens_out,
        cost_usd = t.cost_usd + EXCLUDED.cost_usd,
        unpriced_count = t.unpriced_count + EXCLUDED.unpriced_count,
        models = CASE WHEN EXCLUDED.models <@ t.models THEN t.models
                      ELSE ARRAY(SELECT DISTINCT m FROM unnest(t.models || EXCLUDED.models) AS m ORDER BY m) END,
        session_id = coalesce(t.session_id, EXCLUDED.session_id),
        user_id = coalesce(t.user_id, EXCLUDED.user_id),
        prompt_name = coalesce(t.prompt_name, EXCLUDED.prompt_name),
        prompt_version = CASE WHEN t.prompt_name IS NULL THEN EXCLUDED.prompt_version ELSE t.prompt_version END
"""


async def _upsert_rollups(conn: Conn, project_id: int, spans: list[SpanRecord]) -> None:
    """Adds the spans to their minute rows. Each row's latencies travel as bucket numbers (a slice of one
    flat array) that ``analytics.histogram_of`` turns into the row's histogram."""
    groups: dict[tuple[int, str, str, str, int, str], list[Any]] = {}
    for s in spans:
        key = (s.start_ns // 60_000_000_000, s.model or "", s.name, s.prompt_name or "", s.prompt_version or 0,
               s.user_id or "")  # fmt: skip
        g = groups.get(key)
        if g is None:
            g = groups[key] = [0, 0, 0, 0, 0.0, 0, []]
        g[0] += 1
        g[1] += s.status == "error"
        g[2] += s.tokens_in or 0
        g[3] += s.tokens_out or 0
        if s.cost_usd is not None:
            g[4] += s.cost_usd
        elif s.model is not None:
            g[5] += 1
        g[6].append(histogram.bucket_of((s.end_ns - s.start_ns) / 1e6))
    keys = list(groups)
    values = list(groups.values())
    buckets: list[int] = []
    ranges: list[tuple[int, int]] = []
    for g in values:
        ranges.append((len(buckets) + 1, len(buckets) + len(g[6])))
        buckets.extend(g[6])
    await conn.execute(
        _UPSERT_ROLLUPS,
        (
            project_id, _numbers(buckets),
            _numbers(k[0] for k in keys), _texts(k[1] for k in keys), _texts(k[2] for k in keys),
            _texts(k[3] for k in keys), _numbers(k[4] for k in keys), _texts(k[5] for k in keys),
            *(_numbers(g[i] for g in values) for i in range(6)),
            _numbers(lo for lo, _ in ranges), _numbers(hi for _, hi in ranges),
        ),
    )  # fmt: skip


_UPSERT_ROLLUPS = """
    INSERT INTO analytics.span_rollups_minute AS t (
        project_id, minute, model, span_name, prompt_name, prompt_version, user_id, span_count, error_count,
        tokens_in, tokens_out, cost_usd, cost_unpriced_count, latency_hist)
    SELECT %s, to_timestamp(r.minute * 60), r.model, r.span_name, r.prompt_name, r.prompt_version, r.user_id,
           r.spans, r.errors, r.tokens_in, r.tokens_out, r.cost, r.unpriced,
           analytics.histogram_of(h.buckets[r.lo:r.hi])
      FROM (SELECT %s::int[] AS buckets) AS h,
           unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::bigint[],
                  %s::bigint[], %s::bigint[], %s::bigint[], %s::float8[], %s::bigint[], %s::int[], %s::int[])
           AS r(minute, model, span_name, prompt_name, prompt_version, user_id, spans, errors, tokens_in,
                tokens_out, cost, unpriced, lo, hi)
     ORDER BY 2, 3, 4, 5, 6, 7
    ON CONFLICT (project_id, minute, model, span_name, prompt_name, prompt_version, user_id) DO UPDATE SET
        span_count = t.span_count + EXCLUDED.span_count,
        error_count = t.error_count + EXCLUDED.error_count,
        tokens_in = t.tokens_in + EXCLUDED.tokens_in,
        tokens_out = t.tokens_out + EXCLUDED.tokens_out,
        cost_usd = t.cost_usd + EXCLUDED.cost_usd,
        cost_unpriced_count = t.cost_unpriced_count + EXCLUDED.cost_unpriced_count,
        latency_hist = analytics.histogram_add(t.latency_hist, EXCLUDED.latency_hist)
"""


def _numbers(values: Iterable[float | None]) -> str:
    """A column of numbers as one Postgres array literal.

    Arrays go as literals built here rather than as lists: psycopg's list dumpers are a Python loop with a
    call per element (text form: a regex per element too), which cost more than the upserts themselves."""
    return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"


def _texts(values: Iterable[str | None]) -> str:
    """A column of text as one array literal: every element quoted, so only \\ and " need escaping."""
    return (
        "{"
        + ",".join(["NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values])
        + "}"
    )


# ---------------------------------------------------------------- reading helpers

_SUMMARY_COLUMNS = """trace_id, name, start_time, end_time, duration_ms, root_span_id IS NOT NULL AS has_root,
    span_count, error_count, tokens_in, tokens_out, cost_usd, unpriced_count, models, session_id, user_id,
    prompt_name, prompt_version, input_preview, output_preview"""
_SPAN_READ_COLUMNS = ", ".join(c for c in SPAN_COLUMNS if c != "project_id")
_GROUPS: dict[GroupBy, tuple[str, ...]] = {
    "model": ("model",),
    "prompt_version": ("prompt_name", "prompt_version"),
    "span_name": ("span_name",),
    "user": ("user_id",),
}
Row: TypeAlias = dict[str, Any]


def _summary(r: Row) -> TraceSummary:
    return TraceSummary(
        **{**r, "trace_id": r["trace_id"].hex(), "status": "error" if r["error_count"] else "ok"},
    )


def _ns(t: datetime) -> int:
    return (t - EPOCH) // ONE_US * 1000


def _span(r: Row) -> SpanRecord:
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


def _point(r: Row, groups: tuple[str, ...], wanted: set[Measure]) -> MetricPoint:
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


def _trace_id(trace_id: str) -> bytes:
    if not _HEX32.fullmatch(trace_id):
        raise InvalidInput("trace_id must be 32 hex digits", {"field": "trace_id"})
    return bytes.fromhex(trace_id)


def _like(text: str) -> str:
    """``text`` as a literal inside an ILIKE pattern (backslash is the default escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _preview(text: str | None) -> str | None:
    return text if text is None or len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS]
