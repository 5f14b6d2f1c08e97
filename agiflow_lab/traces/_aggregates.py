"""What a batch's newly inserted spans add to the trace summaries and the metric rollups.

Called by ``loading`` with exactly the spans its insert stored, in the same transaction, so a redelivered
batch adds nothing and counts are never doubled. One set-based upsert per table, rows in key order (so
concurrent loaders wait for each other instead of deadlocking).

A batch's rows travel as one array per column: one statement and one plan whatever the batch size, and
set-based in the database. Times are integer microseconds (a float would round them); ids are hex.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agiflow_lab.db.database import Conn
from agiflow_lab.traces import histogram
from agiflow_lab.traces.records import SpanRecord
from agiflow_lab.traces.text_index import PREVIEWS

PREVIEW_CHARS = 500  # of the root's input and output, for the list and its text search


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


async def upsert_summaries(conn: Conn, project_id: int, spans: list[SpanRecord]) -> list[tuple[datetime, str]]:
    """Returns each upserted summary's start time and previews as they now stand (for ``text_index``)."""
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
    cur = await conn.execute(
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
    return [(r["start_time"], r["previews"]) for r in await cur.fetchall()]


# The models of each trace are the slice [models_lo:models_hi] of one array.
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
    RETURNING t.start_time, {PREVIEWS} AS previews
"""  # noqa: S608 (constant fragments; values are bound, as in the store modules)


# analytics.span_rollups' dimensions (0012_dimension_rollups.sql) and widths, in minutes.
MODEL, SPAN_NAME, PROMPT, USER = 0, 1, 2, 3
WIDTHS = (1, 60)
_Key = tuple[int, int, int, str, int]  # (width, start minute since the epoch, dim, value, version)


async def upsert_rollups(conn: Conn, project_id: int, spans: list[SpanRecord]) -> None:
    """Adds each span to its row of every dimension, minute and hour, in one statement. Each row's
    latencies travel as bucket numbers (a slice of one flat array) that ``analytics.histogram_of`` turns
    into the row's histogram."""
    groups: dict[_Key, list[Any]] = {}
    for s in spans:
        minute = s.start_ns // 60_000_000_000
        bucket = histogram.bucket_of((s.end_ns - s.start_ns) / 1e6)
        error = s.status == "error"
        priced = s.cost_usd is not None
        unpriced = not priced and s.model is not None
        dims = ((MODEL, s.model or "", 0), (SPAN_NAME, s.name, 0),
                (PROMPT, s.prompt_name or "", s.prompt_version or 0), (USER, s.user_id or "", 0))  # fmt: skip
        for width in WIDTHS:
            at = minute - minute % width
            for dim, value, version in dims:
                key = (width, at, dim, value, version)
                g = groups.get(key)
                if g is None:
                    g = groups[key] = [0, 0, 0, 0, 0.0, 0, []]
                g[0] += 1
                g[1] += error
                g[2] += s.tokens_in or 0
                g[3] += s.tokens_out or 0
                if priced:
                    g[4] += s.cost_usd
                g[5] += unpriced
                g[6].append(bucket)
    keys = sorted(groups)  # the primary key's order (after the project), so concurrent loaders queue
    values = [groups[k] for k in keys]
    buckets: list[int] = []
    ranges: list[tuple[int, int]] = []
    for g in values:
        ranges.append((len(buckets) + 1, len(buckets) + len(g[6])))
        buckets.extend(g[6])
    await conn.execute(
        _UPSERT_ROLLUPS,
        (
            project_id, _numbers(buckets),
            _numbers(k[0] for k in keys), _numbers(k[1] for k in keys), _numbers(k[2] for k in keys),
            _texts(k[3] for k in keys), _numbers(k[4] for k in keys),
            *(_numbers(g[i] for g in values) for i in range(6)),
            _numbers(lo for lo, _ in ranges), _numbers(hi for _, hi in ranges),
        ),
    )  # fmt: skip


_UPSERT_ROLLUPS = """
    INSERT INTO analytics.span_rollups AS t (
        project_id, width, at, dim, value, version, span_count, error_count, tokens_in, tokens_out, cost_usd,
        cost_unpriced_count, latency_hist)
    SELECT %s, r.width, to_timestamp(r.minute * 60), r.dim, r.value, r.version, r.spans, r.errors, r.tokens_in,
           r.tokens_out, r.cost, r.unpriced, analytics.histogram_of(h.buckets[r.lo:r.hi])
      FROM (SELECT %s::int[] AS buckets) AS h,
           unnest(%s::smallint[], %s::bigint[], %s::smallint[], %s::text[], %s::int[], %s::bigint[], %s::bigint[],
                  %s::bigint[], %s::bigint[], %s::float8[], %s::bigint[], %s::int[], %s::int[])
           AS r(width, minute, dim, value, version, spans, errors, tokens_in, tokens_out, cost, unpriced, lo, hi)
     ORDER BY r.width, r.dim, r.minute, r.value, r.version
    ON CONFLICT (project_id, width, dim, at, value, version) DO UPDATE SET
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


def _preview(text: str | None) -> str | None:
    return text if text is None or len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS]
