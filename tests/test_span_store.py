"""The span store: what ``load`` keeps (once, whatever is redelivered), and what the reads give back.

A fresh migrated database per test (the ``db`` fixture) with real projects; spans are ``SpanRecord``s
built here, as the span writer would get them from the bus. Times are whole microseconds (what a
``timestamptz`` holds), so a span read back equals the span loaded. The histogram's own rules are tested
first, without a database.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.db.database import Database
from agiflow_lab.errors import InvalidInput
from agiflow_lab.projects import store as projects_store
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.traces import histogram, text_index
from agiflow_lab.traces.partitions import day_of_ns, name_of
from agiflow_lab.traces.records import SpanRecord
from agiflow_lab.traces.retention import purge_traces
from agiflow_lab.traces.store import PostgresSpanStore

MS = 1_000_000  # ns
MINUTE = 60_000 * MS
TODAY = datetime.now(UTC).date()
# Noon three days ago: far from midnight, so a test's spans stay on one day unless it means otherwise.
T0 = int(datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC).timestamp()) * 10**9 - 3 * 86_400 * 10**9


# ---------------------------------------------------------------- the histogram, on its own


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[histogram.rank(len(ordered), q)]


@pytest.mark.parametrize("seed", range(20))
def test_quantiles_are_within_the_documented_bound_of_the_exact_value(seed: int) -> None:
    rng = random.Random(seed)
    shape = seed % 4
    n = rng.choice([1, 2, 7, 100, 5000])
    if shape == 0:
        values = [rng.lognormvariate(6, 1.2) for _ in range(n)]  # LLM calls: ~400 ms, a long tail
    elif shape == 1:
        values = [rng.uniform(1, 600_000) for _ in range(n)]
    elif shape == 2:
        values = [rng.choice([3.0, 250.0, 9000.0]) * rng.uniform(1, 1.02) for _ in range(n)]  # clusters
    else:
        values = [10 ** rng.uniform(0, 5.7) for _ in range(n)]
    counts = histogram.of(values)
    for q in (0, 0.01, 0.5, 0.9, 0.95, 0.99, 1):
        got = histogram.quantile(counts, q)
        assert got is not None
        assert abs(got - exact(values, q)) <= histogram.RELATIVE_ERROR * exact(values, q), (q, n)


def test_outside_the_log_range_the_bound_is_absolute_below_and_a_floor_above() -> None:
    assert histogram.quantile(histogram.of([0.0, 0.2, 0.9]), 0.5) == 0.5  # within 0.5 ms of anything < 1 ms
    top = histogram.quantile(histogram.of([20 * 60_000.0]), 0.5)
    assert top is not None and top == histogram.EDGES[-1] < 20 * 60_000
    assert histogram.bucket_of(float("nan")) == 0 and histogram.bucket_of(-3) == 0


def test_buckets_start_at_their_edge_and_merging_equals_counting_everything() -> None:
    for k, edge in enumerate(histogram.EDGES):
        assert histogram.bucket_of(edge) == k + 1
    assert histogram.bucket_of(1e12) == histogram.BUCKETS - 1
    assert histogram.RELATIVE_ERROR < 0.048
    rng = random.Random(1)
    a = [rng.lognormvariate(5, 2) for _ in range(300)]
    b = [rng.lognormvariate(8, 1) for _ in range(200)]
    assert histogram.merge(histogram.of(a), histogram.of(b)) == histogram.of(a + b)
    assert histogram.quantile(histogram.empty(), 0.5) is None
    with pytest.raises(ValueError):
        histogram.merge([1], histogram.empty())


def test_a_stored_range_becomes_the_full_histogram() -> None:
    full = histogram.from_range(60, [2, 0, 5])
    assert len(full) == histogram.BUCKETS and full[60] == 2 and full[62] == 5 and sum(full) == 7
    with pytest.raises(ValueError):
        histogram.from_range(histogram.BUCKETS - 1, [1, 1])


# ---------------------------------------------------------------- fixtures and spans


@pytest.fixture
async def projects(db: Database) -> ProjectService:
    service = ProjectService(db, Authorizer(db))
    for slug in ("p", "q"):
        await service.ensure(slug, slug, "olivia")
    return service


@pytest.fixture
async def project(projects: ProjectService) -> int:
    return await projects.resolve_id("p")


@pytest.fixture
def store(db: Database) -> PostgresSpanStore:
    return PostgresSpanStore(db)


def tid(n: int) -> str:
    return f"{n:032x}"


def sid(trace: int, n: int) -> str:
    return f"{trace:08x}{n:08x}"


def span(trace: int, n: int, *, parent: int | None = None, at: int = 0, ms: float = 10.0, **fields: Any) -> SpanRecord:
    """Span ``n`` of trace ``trace``, starting ``at`` ns after T0 and lasting ``ms`` (whole µs)."""
    start = T0 + at
    values: dict[str, Any] = dict(
        trace_id=tid(trace), span_id=sid(trace, n), parent_span_id=None if parent is None else sid(trace, parent),
        name="step", kind="internal", start_ns=start, end_ns=start + round(ms * 1000) * 1000, status="ok",
        status_message=None, service_name="svc", scope_name="scope", span_type="other", model=None, provider=None,
        input=None, output=None, tokens_in=None, tokens_out=None, cost_usd=None, session_id=None, user_id=None,
        tags=(), prompt_name=None, prompt_version=None, attributes={"n": n, "nested": {"x": [1, 2.5, "é"]}},
        events=[{"name": "e", "time_ns": start, "attributes": {"k": "v"}}], resource_attributes={"service.name": "svc"},
    )  # fmt: skip
    values.update(fields)
    return SpanRecord(**values)


def trace(
    n: int, *, at: int = 0, spans: int = 4, model: str = "gpt-4o", error: bool = False, **root: Any
) -> list[SpanRecord]:
    """A root (``root`` overrides its fields) with ``spans - 1`` children, the odd ones LLM calls of ``model``
    (100 tokens in, 20 out, $0.001 each)."""
    fields: dict[str, Any] = {"ms": spans * 100.0, "name": "agent", "input": "question", "output": "answer"}
    out = [span(n, 0, at=at, **(fields | root))]
    for k in range(1, spans):
        llm = dict(model=model, tokens_in=100, tokens_out=20, cost_usd=0.001, span_type="chat") if k % 2 else {}
        status = "error" if error and k == 1 else "ok"
        out.append(span(n, k, parent=0, at=at + k * MS, ms=50.0 * k, name=f"child{k % 2}", status=status, **llm))
    return out


async def table(db: Database, query: str) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        cur = await conn.execute(query)  # type: ignore[arg-type]  # constant test queries
        return await cur.fetchall()


# Spans counted by the rollups at each width, through one dimension's rows (each span is in one per dimension).
ROLLED_UP = """SELECT width, sum(span_count) AS n, sum(tokens_in) AS t FROM analytics.span_rollups
                WHERE dim = 0 GROUP BY width ORDER BY width"""


async def state(db: Database) -> tuple[list[dict[str, Any]], ...]:
    return (
        await table(db, "SELECT * FROM analytics.trace_summaries ORDER BY project_id, trace_id"),
        await table(db, "SELECT * FROM analytics.span_rollups ORDER BY 1, 2, 3, 4, 5, 6"),
        await table(db, "SELECT project_id, trace_id, span_id, received_at FROM analytics.spans ORDER BY 1, 2, 3"),
    )


# ---------------------------------------------------------------- load: once, whatever comes again


async def test_a_redelivered_batch_inserts_nothing_and_changes_no_summary_or_rollup(
    db: Database, store: PostgresSpanStore, project: int
) -> None:
    batch = trace(1) + trace(2, at=MINUTE) + trace(3, at=2 * MINUTE, error=True)
    assert await store.load(project, batch) == 12
    before = await state(db)
    assert len(before[0]) == 3 and len(before[2]) == 12

    assert await store.load(project, batch) == 0
    assert await store.load(project, list(reversed(batch)), redelivery=True) == 0
    assert await state(db) == before


async def test_a_partly_redelivered_batch_adds_only_its_new_spans(
    db: Database, store: PostgresSpanStore, project: int
) -> None:
    first = trace(1, spans=6)
    assert await store.load(project, first[:4]) == 4
    assert await store.load(project, first[2:] + first[2:3], redelivery=True) == 2  # two new; one old, twice

    [summary] = (await store.list_traces(project)).items
    assert (summary.span_count, summary.tokens_in) == (6, 300) and summary.cost_usd == pytest.approx(0.003)
    rollups = await table(db, ROLLED_UP)
    assert rollups == [{"width": 1, "n": 6, "t": 300}, {"width": 60, "n": 6, "t": 300}]


async def test_spans_are_read_back_as_they_were_loaded_in_start_order(store: PostgresSpanStore, project: int) -> None:
    spans = trace(7, spans=5, user_id="u", session_id="s", tags=("a", "b"), prompt_name="greet", prompt_version=2)
    spans[1] = spans[1]._replace(status="error", status_message="boom", kind="client", provider="openai")
    await store.load(project, list(reversed(spans)))

    page = await store.get_trace(project, tid(7))
    assert page.spans == spans and page.next_cursor is None


async def test_a_long_trace_is_read_a_page_at_a_time(store: PostgresSpanStore, project: int) -> None:
    spans = [span(9, 0, ms=1000)] + [span(9, k, parent=0, at=(k // 3) * MS) for k in range(1, 40)]  # ties on start
    await store.load(project, spans)

    seen: list[SpanRecord] = []
    cursor = None
    while True:
        page = await store.get_trace(project, tid(9), cursor=cursor, limit=7)
        seen += page.spans
        if (cursor := page.next_cursor) is None:
            break
    assert seen == sorted(spans, key=lambda s: (s.start_ns, s.span_id))
    assert (await store.get_trace(project, tid(10))).spans == []
    with pytest.raises(InvalidInput):
        await store.get_trace(project, "not-hex")
    with pytest.raises(InvalidInput):
        await store.get_trace(project, tid(9), cursor="garbage")


async def test_spans_on_two_days_are_stored_in_two_daily_partitions(
    db: Database, store: PostgresSpanStore, project: int
) -> None:
    midnight = (T0 // (86_400 * 10**9) + 1) * 86_400 * 10**9  # the one after T0's noon
    before, after = midnight - MINUTE - T0, midnight + MINUTE - T0
    batch = [span(1, 0, at=before, ms=3 * 60_000.0), span(1, 1, parent=0, at=after)]
    assert await store.load(project, batch) == 2

    days = [day_of_ns(T0 + before), day_of_ns(T0 + after)]
    assert days[1] == days[0] + timedelta(days=1)
    assert [d for d in await store.partitions.existing() if d in days] == days
    rows = await table(db, "SELECT tableoid::regclass::text AS part FROM analytics.spans ORDER BY start_time")
    assert [r["part"] for r in rows] == [f"analytics.{name_of(d)}" for d in days]
    [summary] = (await store.list_traces(project)).items
    assert summary.span_count == 2 and summary.duration_ms == pytest.approx(3 * 60_000.0)


async def test_spans_outside_the_stored_days_are_dropped_without_making_a_partition(
    store: PostgresSpanStore, project: int
) -> None:
    too_old = span(1, 0, at=-200 * 86_400 * 10**9)
    too_new = span(2, 0, at=10 * 86_400 * 10**9)
    assert await store.load(project, [too_old, too_new, span(3, 0)]) == 1
    assert await store.partitions.existing() == [day_of_ns(T0)]
    first = int(datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC).timestamp() - 90 * 86_400) * 10**9
    after = first + 92 * 86_400 * 10**9  # today + 1 is the last day taken
    assert store.accepts(first, TODAY) and store.accepts(after - 1, TODAY)
    assert not store.accepts(first - 1, TODAY) and not store.accepts(after, TODAY)


async def test_a_partition_dropped_by_another_process_is_made_again(
    db: Database, store: PostgresSpanStore, project: int
) -> None:
    await store.load(project, [span(1, 0)])
    other = PostgresSpanStore(db)  # another process: its own cache
    assert (await other.drop_partitions_before(TODAY)).partitions == [name_of(day_of_ns(T0))]
    assert await store.load(project, [span(2, 0)]) == 1  # our cache still had the day
    assert [s.span_id for s in (await store.get_trace(project, tid(2))).spans] == [sid(2, 0)]


async def test_overlapping_batches_loaded_at_once_store_each_span_once(db: Database, project: int) -> None:
    spans = [s for n in range(40) for s in trace(n, at=n * 7 * MS, spans=6)]  # 240 spans, 40 traces
    rng = random.Random(3)
    for round_ in range(4):
        stores = [PostgresSpanStore(db) for _ in range(3)]  # separate caches: they race to make the partition
        batches = [rng.sample(spans, 150) for _ in stores]
        counts = await asyncio.gather(*(s.load(project, b) for s, b in zip(stores, batches, strict=True)))
        if round_ == 0:
            assert sum(counts) == len({s.span_id for b in batches for s in b})
    stored = len(await table(db, "SELECT 1 FROM analytics.spans"))
    assert await PostgresSpanStore(db).load(project, spans) == len(spans) - stored

    assert len(await table(db, "SELECT 1 FROM analytics.spans")) == 240
    summaries = await table(db, "SELECT span_count, tokens_in FROM analytics.trace_summaries")
    assert len(summaries) == 40 and all(r == {"span_count": 6, "tokens_in": 300} for r in summaries)
    totals = await table(db, ROLLED_UP)
    assert totals == [{"width": w, "n": 240, "t": 40 * 300} for w in (1, 60)]


# ---------------------------------------------------------------- summaries and the trace list


async def test_a_summary_gathers_a_trace_whose_spans_come_in_several_batches(
    store: PostgresSpanStore, project: int
) -> None:
    spans = trace(5, spans=5, model="gpt-4o", name="agent run", user_id="ann")
    spans[3] = spans[3]._replace(model="claude")
    spans[1] = spans[1]._replace(cost_usd=None)  # an LLM call without a price
    await store.load(project, spans[3:])  # children first: no root yet
    [early] = (await store.list_traces(project)).items
    assert not early.has_root and early.name == "child1"

    await store.load(project, spans[:3])
    [done] = (await store.list_traces(project)).items
    assert done.has_root and done.name == "agent run" and done.input_preview == "question"
    assert done.start_time == datetime.fromtimestamp(T0 / 1e9, UTC)
    assert (done.span_count, done.tokens_in, done.tokens_out, done.unpriced_count) == (5, 200, 40, 1)
    assert done.cost_usd == pytest.approx(0.001)
    assert done.models == ["claude", "gpt-4o"] and done.user_id == "ann" and done.status == "ok"
    assert done.duration_ms == pytest.approx(500.0)


async def test_each_trace_list_filter_selects_its_traces(
    store: PostgresSpanStore, projects: ProjectService, project: int
) -> None:
    await store.load(project, trace(1, model="gpt-4o", user_id="ann", session_id="s1"))
    await store.load(project, trace(2, at=MINUTE, model="claude", error=True, name="retrieval"))
    await store.load(project, trace(3, at=2 * MINUTE, spans=2, prompt_name="greet", prompt_version=3, ms=1.0))
    await store.load(project, trace(4, at=3 * MINUTE, input="refund 100% of order_42", output="done"))
    await store.load(await projects.resolve_id("q"), trace(5, at=MINUTE))  # another project's: never listed

    async def ids(**filters: Any) -> list[int]:
        return [int(t.trace_id, 16) for t in (await store.list_traces(project, **filters)).items]

    start = datetime.fromtimestamp((T0 + MINUTE) / 1e9, UTC)
    assert await ids() == [4, 3, 2, 1]
    assert await ids(start=start) == [4, 3, 2]
    assert await ids(end=start) == [1]
    assert await ids(start=start, end=start + timedelta(minutes=1)) == [2]
    assert await ids(status="error") == [2]
    assert await ids(status="ok") == [4, 3, 1]
    assert await ids(model="claude") == [2]
    assert await ids(name="retrieval") == [2]
    assert await ids(user="ann") == [1]
    assert await ids(session="s1") == [1]
    assert await ids(prompt_name="greet") == [3]
    assert await ids(prompt_name="greet", prompt_version=4) == []
    assert await ids(prompt_version=3) == [3]
    assert await ids(min_latency_ms=300) == [4, 2, 1]
    assert await ids(text="REFUND") == [4]
    assert await ids(text="100%") == [4]
    assert await ids(text="100_") == []  # _ is a character here, not a wildcard
    assert await ids(text="order_4") == [4]
    assert await ids(text="answer") == [3, 2, 1]  # searches outputs too
    assert await ids(text="nd 100") == [4]  # a substring, across words


async def test_filtered_pages_and_text_search_are_index_reads(db: Database, project: int) -> None:
    """The planner's choice for the list's queries, on a project of 20,000 traces: each rare-valued filter
    reads its own index rather than scanning the project's summaries."""
    async with db.connection() as conn:
        await conn.execute(
            """INSERT INTO analytics.trace_summaries (project_id, trace_id, start_time, end_time, name, span_count,
                   error_count, tokens_in, tokens_out, cost_usd, unpriced_count, models, session_id, user_id,
                   prompt_name, prompt_version, input_preview, output_preview)
               SELECT %s, decode(lpad(to_hex(n), 32, '0'), 'hex'), now() - n * interval '1 second', now(),
                      'agent ' || (n %% 50), 8, (n %% 97 = 0)::int, 0, 0, 0, 0, ARRAY['model-' || (n %% 2000)],
                      's' || (n %% 3000), 'u' || (n %% 500), 'p' || (n %% 10), 1,
                      'question number ' || n || ' about topic' || (n %% 1000), 'answer ' || n
                 FROM generate_series(1, 20000) AS n""",
            (project,),
        )
        await conn.execute("ANALYZE analytics.trace_summaries")
    store = PostgresSpanStore(db)
    plans: list[str] = []

    async def explain(**filters: Any) -> str:
        original = db.connection

        # The store's own SQL, explained: run list_traces on a connection that prefixes EXPLAIN.
        class Explaining:
            def __init__(self, conn: Any) -> None:
                self.conn = conn

            async def execute(self, query: str, params: Any = None) -> Any:
                cur = await self.conn.execute("EXPLAIN " + query, params)
                plans.append("\n".join(r["QUERY PLAN"] for r in await cur.fetchall()))
                return _NoRows()

        class _NoRows:
            async def fetchall(self) -> list[Any]:
                return []

        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def explaining() -> Any:
            async with original() as conn:
                yield Explaining(conn)

        db.connection = explaining  # type: ignore[method-assign]
        try:
            await store.list_traces(project, **filters)
        finally:
            db.connection = original  # type: ignore[method-assign]
        return plans[-1]

    assert "trace_summaries_by_user" in await explain(user="u7")
    assert "trace_summaries_by_session" in await explain(session="s12")
    assert "trace_summaries_by_prompt" in await explain(prompt_name="p3", prompt_version=1)
    assert "trace_summaries_errors" in await explain(status="error")
    assert "trace_summaries_by_time" in await explain()


async def test_trace_pages_return_every_trace_once_newest_first(store: PostgresSpanStore, project: int) -> None:
    batch = [s for n in range(1, 26) for s in trace(n, at=(n // 2) * MS, spans=2)]  # pairs share a start
    await store.load(project, batch)

    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_traces(project, limit=7, cursor=cursor)
        seen += [t.trace_id for t in page.items]
        if (cursor := page.next_cursor) is None:
            break
    expected = sorted((tid(n) for n in range(1, 26)), key=lambda t: ((int(t, 16) // 2), t), reverse=True)
    assert seen == expected
    with pytest.raises(InvalidInput):
        await store.list_traces(project, cursor="bm90IG91cnM")
    with pytest.raises(InvalidInput):
        await store.list_traces(project, limit=0)


# ---------------------------------------------------------------- metrics from the rollups


async def test_metrics_by_minute_and_hour_per_model_add_up_exactly(store: PostgresSpanStore, project: int) -> None:
    rng = random.Random(11)
    latencies: dict[tuple[int, str], list[float]] = {}
    spans = []
    for n in range(300):
        model = rng.choice(["gpt-4o", "claude"])
        minute = rng.randrange(3)
        ms = round(rng.lognormvariate(6, 1), 3)
        priced = rng.random() < 0.9
        spans.append(
            span(
                n,
                0,
                at=minute * MINUTE + rng.randrange(50_000) * MS,
                ms=ms,
                model=model,
                name="chat",
                tokens_in=n,
                tokens_out=2 * n,
                cost_usd=n / 1000 if priced else None,
                status="error" if n % 10 == 0 else "ok",
                user_id=f"u{n % 4}",
            )  # fmt: skip
        )
        latencies.setdefault((minute, model), []).append(ms)
    for k in range(0, 300, 64):
        await store.load(project, spans[k : k + 64])
    await store.load(project, spans)  # redelivered: nothing counted twice

    start = datetime.fromtimestamp(T0 / 1e9, UTC)
    points = await store.metrics(project, start=start, end=start + timedelta(hours=1), group_by="model")
    assert len(points) == 6
    for p in points:
        minute = int((p.time - start).total_seconds() // 60)
        named = p.group["model"]
        assert isinstance(named, str)
        mine = [s for s in spans if s.model == named and (s.start_ns - T0) // MINUTE == minute]
        assert p.count == len(mine) == len(latencies[minute, named])
        assert p.errors == sum(s.status == "error" for s in mine)
        assert p.error_rate == pytest.approx(p.errors / p.count)
        assert p.tokens_in == sum(s.tokens_in or 0 for s in mine)
        assert p.tokens_out == sum(s.tokens_out or 0 for s in mine)
        assert p.cost_usd == pytest.approx(sum(s.cost_usd or 0 for s in mine))
        assert p.unpriced_count == sum(s.cost_usd is None for s in mine)
        for q, got in ((0.5, p.latency_p50_ms), (0.95, p.latency_p95_ms), (0.99, p.latency_p99_ms)):
            want = exact(latencies[minute, named], q)
            assert got is not None and abs(got - want) <= histogram.RELATIVE_ERROR * want

    hourly = await store.metrics(project, start=start, end=start + timedelta(hours=1), bucket="hour", group_by="model")
    assert {p.group["model"]: p.count for p in hourly} == Counter(s.model for s in spans)
    for p in hourly:
        want = exact([ms for (_, m), v in latencies.items() if m == p.group["model"] for ms in v], 0.95)
        assert p.latency_p95_ms is not None and abs(p.latency_p95_ms - want) <= histogram.RELATIVE_ERROR * want

    [total] = await store.metrics(project, start=start, end=start + timedelta(days=1), bucket="day", measures=["count"])
    assert total.count == 300 and total.group == {} and total.latency_p95_ms is None and total.tokens_in is None
    by_user = await store.metrics(project, start=start, end=start + timedelta(hours=1), bucket="hour", group_by="user")
    assert sorted((p.group["user_id"], p.count) for p in by_user) == [(f"u{k}", 75) for k in range(4)]


async def test_hour_and_day_points_read_hour_rows_and_the_minute_rows_at_the_ranges_edges(
    db: Database, store: PostgresSpanStore, project: int
) -> None:
    rng = random.Random(5)
    spans = [span(n, 0, at=rng.randrange(180) * MINUTE + rng.randrange(59_000) * MS, ms=rng.uniform(1, 900),
                  model=rng.choice(["a", "b"]), tokens_in=n) for n in range(400)]  # fmt: skip
    for k in range(0, 400, 50):
        await store.load(project, spans[k : k + 50])
    [same] = await table(db, """SELECT count(*) AS differing FROM (
        SELECT project_id, date_trunc('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, dim, value,
               version, sum(span_count) AS n, sum(tokens_in) AS t, analytics.histogram_sum(latency_hist) AS h
          FROM analytics.span_rollups WHERE width = 1 GROUP BY 1, 2, 3, 4, 5
        EXCEPT SELECT project_id, at, dim, value, version, span_count, tokens_in, latency_hist
                 FROM analytics.span_rollups WHERE width = 60) AS d""")  # fmt: skip
    assert same["differing"] == 0  # every hour row is exactly the sum of its minute rows

    t0 = datetime.fromtimestamp(T0 / 1e9, UTC)
    start, end = t0 + timedelta(minutes=17), t0 + timedelta(minutes=151)  # inside the first and third hours
    inside = [s for s in spans if start <= datetime.fromtimestamp(s.start_ns / 1e9, UTC) < end]
    hourly = await store.metrics(project, start=start, end=end, bucket="hour", measures=["count", "tokens"])
    want = Counter(t0 + timedelta(hours=(s.start_ns - T0) // (60 * MINUTE)) for s in inside)
    assert {p.time: p.count for p in hourly} == want
    [day] = await store.metrics(project, start=start.astimezone(timezone(timedelta(hours=5, minutes=30))),
                                end=end, bucket="day", measures=["count", "latency"])  # fmt: skip
    assert day.count == len(inside) and day.latency_p50_ms is not None
    short = await store.metrics(project, start=start, end=start + timedelta(minutes=2), bucket="hour")
    assert sum(p.count or 0 for p in short) == sum(
        start <= datetime.fromtimestamp(s.start_ns / 1e9, UTC) < start + timedelta(minutes=2) for s in spans
    )  # a range inside one hour: minute rows only


async def test_metrics_group_by_prompt_version_and_span_name_and_name_what_is_absent(
    store: PostgresSpanStore, project: int
) -> None:
    await store.load(project, trace(1, prompt_name="greet", prompt_version=2) + trace(2, at=MS))
    start = datetime.fromtimestamp(T0 / 1e9, UTC)
    end = start + timedelta(minutes=1)
    by_prompt = await store.metrics(project, start=start, end=end, group_by="prompt_version", measures=["count"])
    assert sorted((p.group["prompt_name"] or "", p.count or 0) for p in by_prompt) == [("", 7), ("greet", 1)]
    assert next(p.group for p in by_prompt if p.group["prompt_name"]) == {"prompt_name": "greet", "prompt_version": 2}
    by_name = await store.metrics(project, start=start, end=end, group_by="span_name", measures=["count", "latency"])
    assert {p.group["span_name"]: p.count for p in by_name} == {"agent": 2, "child0": 2, "child1": 4}
    with pytest.raises(InvalidInput):
        await store.metrics(project, start=start, end=end, bucket="week")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        await store.metrics(project, start=start, end=end, measures=["p42"])  # type: ignore[list-item]


async def test_the_databases_histogram_functions_count_like_the_python_ones(db: Database) -> None:
    rng = random.Random(5)
    a = [rng.lognormvariate(6, 1.5) for _ in range(50)]
    b = [rng.lognormvariate(3, 1) for _ in range(30)]
    async with db.connection() as conn:
        cur = await conn.execute(
            """SELECT array_lower(h, 1) AS lo, h FROM (SELECT analytics.histogram_add(
                   analytics.histogram_of(%s::int[]), analytics.histogram_of(%s::int[])) AS h) AS x""",
            ([histogram.bucket_of(v) for v in a], [histogram.bucket_of(v) for v in b]),
        )
        row = await cur.fetchone()
    assert row is not None
    assert histogram.from_range(row["lo"], row["h"]) == histogram.of(a + b)


# ---------------------------------------------------------------- retention


async def test_retention_drops_whole_old_days_and_one_projects_older_rows(
    db: Database, store: PostgresSpanStore, projects: ProjectService, project: int
) -> None:
    q = await projects.resolve_id("q")
    day = 86_400 * 10**9
    for p in (project, q):
        await store.load(p, trace(1, at=-day) + trace(2) + trace(3, at=day))  # three days: T0-1, T0, T0+1
    days = [day_of_ns(T0 - day), day_of_ns(T0), day_of_ns(T0 + day)]
    assert await store.partitions.existing() == days

    purged = await store.drop_partitions_before(days[1])
    assert purged.partitions == [name_of(days[0])] and purged.traces == 2 and purged.rollups > 0
    assert await store.partitions.existing() == days[1:]

    mine = await store.drop_partitions_before(days[2], project_id=project)
    assert (mine.partitions, mine.spans, mine.traces) == ([], 4, 1)
    assert [t.trace_id for t in (await store.list_traces(project)).items] == [tid(3)]
    assert [t.trace_id for t in (await store.list_traces(q)).items] == [tid(3), tid(2)]
    assert len((await store.get_trace(q, tid(2))).spans) == 4
    start = datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC)
    counts = await store.metrics(project, start=start, end=start + timedelta(days=3), bucket="day", measures=["count"])
    assert [(p.time.date(), p.count) for p in counts] == [(days[2], 4)]


async def test_each_project_keeps_its_traces_for_its_own_days(
    db: Database, store: PostgresSpanStore, projects: ProjectService, project: int
) -> None:
    """Default 1 day, q 2 days: days older than 2 go whole; p loses its own older day too."""
    q = await projects.resolve_id("q")
    async with db.connection() as conn:
        await projects_store.update(conn, "q", {"trace_retention_days": 2})
    day = 86_400 * 10**9
    for p in (project, q):
        await store.load(p, [s for n in range(4) for s in trace(n + 1, at=(n - 2) * day)])  # T0-2d .. T0+1d
    days = [day_of_ns(T0 + n * day) for n in (-2, -1, 0, 1)]

    purged = await purge_traces(db, store, default_days=1, today=days[3])
    assert purged.partitions == [name_of(days[0])] and purged.spans == 4 and purged.traces == 2 + 1
    assert await store.partitions.existing() == days[1:]
    assert [t.trace_id for t in (await store.list_traces(project)).items] == [tid(4), tid(3)]
    assert [t.trace_id for t in (await store.list_traces(q)).items] == [tid(4), tid(3), tid(2)]
    again = await purge_traces(db, store, default_days=1, today=days[3])
    assert (again.partitions, again.spans, again.traces) == ([], 0, 0)


def test_partition_names_come_from_dates_only() -> None:
    assert name_of(date(2025, 1, 2)) == "spans_20250102"


async def test_attributes_orjson_refuses_are_stored_through_the_standard_library(
    store: PostgresSpanStore, project: int
) -> None:
    """jsonb columns are written by orjson, which refuses integers beyond 64 bits (OTLP's JSON form can carry
    them): those documents still store, whole, beside ones orjson writes."""
    odd = {"big": 2**70, "negative": -(2**65), "edge": 2**64 - 1, "text": "é ✓ 🙂 \"q\" \\", "float": 1e16,
           "nested": {"list": [1, 2.5, None, True, "x"]}}  # fmt: skip
    events = [{"name": "e", "time_ns": T0, "attributes": {"n": 2**64}}]
    spans = trace(3, spans=2)
    spans[1] = spans[1]._replace(attributes=odd, events=events, resource_attributes={"service.name": "ü", "n": 2**80})
    await store.load(project, spans)
    page = await store.get_trace(project, tid(3))
    assert page.spans == spans


async def test_names_with_quotes_backslashes_and_braces_reach_the_summaries_and_rollups_intact(
    store: PostgresSpanStore, project: int
) -> None:
    odd = 'a "quoted" \\ {brace}, comma\nnewline é'
    await store.load(project, trace(1, name=odd, user_id="NULL", session_id="", input=odd, model=odd, prompt_name="}{"))
    [summary] = (await store.list_traces(project)).items
    assert (summary.name, summary.user_id, summary.session_id, summary.input_preview) == (odd, "NULL", "", odd)
    assert summary.models == [odd] and summary.prompt_name == "}{"
    found = await store.list_traces(project, user="NULL", text='"quoted" \\ {')
    assert [t.trace_id for t in found.items] == [tid(1)]
    start = datetime.fromtimestamp(T0 / 1e9, UTC)
    by_user = await store.metrics(project, start=start, end=start + timedelta(hours=1), group_by="user")
    assert {p.group["user_id"]: p.count for p in by_user} == {"NULL": 1, None: 3}
    by_model = await store.metrics(project, start=start, end=start + timedelta(hours=1), group_by="model")
    assert {p.group["model"]: p.count for p in by_model} == {odd: 2, None: 2}


async def test_a_partition_in_use_is_left_for_the_next_run_instead_of_stalling_the_loaders(
    db: Database, store: PostgresSpanStore, project: int
) -> None:
    await store.load(project, [span(1, 0, at=-86_400 * 10**9), span(2, 0)])
    reader = await db.connect()
    try:
        async with reader.transaction():
            await reader.execute("SELECT count(*) FROM analytics.spans")  # a running trace query
            assert await store.partitions.drop_before(TODAY, lock_timeout_ms=100) == []
        assert await store.partitions.drop_before(TODAY) == [
            name_of(day_of_ns(T0 - 86_400 * 10**9)),
            name_of(day_of_ns(T0)),
        ]
    finally:
        await reader.close()


# ---------------------------------------------------------------- free text: the hour filters, without a database
#
# The filters (agiflow_lab.traces.text_index) may only skip hours: whatever the list's ILIKE would find in
# a full scan, it must still find. First without a database (every ILIKE match passes the text's filter),
# then against the store: searches equal a full ILIKE scan, a rare word reads only its hours, pages run
# across hours, and summaries from before the filters are still searched.

HOUR_NS = 60 * MINUTE
# Midnight two days ago (UTC), BASE_HOURS after T0: hour n of these traces is BASE + n hours, all in the past.
BASE_HOURS = 12
BASE = datetime.fromtimestamp(T0 / 1e9, UTC) + timedelta(hours=BASE_HOURS)
# Characters whose case rules differ between lower(), casefold() and Postgres's ILIKE.
ODD = "ßẞΣσςİıiIKkÅåǅǆﬁŉΐ" + "ДдЖж" + "é" + "e\u0301" + "😀" + "中文"


def covers(filter_bits: bytes, mask: bytes) -> bool:
    f, m = int.from_bytes(filter_bits), int.from_bytes(mask)
    return f & m == m


def case_variants(text: str) -> list[str]:
    return [text, text.upper(), text.lower(), text.swapcase(), text.title()]


def pg_lower(text: str) -> str:
    """Lower case as Postgres's ILIKE takes it under a libc locale: one character to one (towlower)."""
    return "".join("i" if c == "İ" else c.lower() if len(c.lower()) == 1 else c for c in text)


def ilike_variants(rng: random.Random, text: str) -> list[str]:
    """Spellings of ``text`` that ILIKE matches where ``text`` is: each character in another case."""
    out = []
    for _ in range(4):
        spelt = "".join(rng.choice([c, c.upper(), c.lower(), c.title()]) for c in text)
        if pg_lower(spelt) == pg_lower(text):
            out.append(spelt)
    return [text, *out]


@pytest.mark.parametrize("seed", range(6))
def test_whatever_ilike_matches_passes_the_texts_filter(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "abcdefghij XYZ_%\\'\"{}" + ODD
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(3, 120))) for _ in range(40)]
    bits = text_index.filter_of(texts)
    checked = 0
    for text in texts:
        for _ in range(25):
            i = rng.randrange(len(text))
            j = rng.randrange(i + 1, len(text) + 1)
            for query in ilike_variants(rng, text[i:j]):
                assert pg_lower(query) in pg_lower(text)
                mask = text_index.mask_of(query)
                if mask is not None:
                    checked += 1
                    assert covers(bits, mask), (text, query)
    assert checked > 1000


def test_short_texts_and_a_combining_dot_are_not_looked_up_and_a_filter_rejects_absent_words() -> None:
    assert text_index.mask_of("ab") is None and text_index.mask_of("é") is None  # 2 bytes: under 3
    assert text_index.mask_of("中") is not None  # 3 bytes
    assert text_index.mask_of("e\u0307x") is None
    bits = text_index.filter_of(["the refund of order 42 was approved", "answer"])
    for present in ("refund", "REFUND", "Order 4", "approved", "swer"):
        assert covers(bits, text_index.mask_of(present) or b"\0"), present
    absent = ["zebra", "giraffe", "kafka", "quux", "xylophone"]
    assert not any(covers(bits, text_index.mask_of(w) or b"\0") for w in absent)


# ---------------------------------------------------------------- free text, through the hour filters


def root(n: int, hour: int, text: str, *, minute: int = 7, output: str = "ok") -> SpanRecord:
    """Trace ``n``'s root, ``minute`` into hour ``hour`` after BASE."""
    at = (BASE_HOURS + hour) * HOUR_NS + minute * MINUTE + n * 1000
    return span(n, 0, at=at, name="agent", input=text, output=output)


async def search(store: PostgresSpanStore, project: int, text: str, **filters: Any) -> list[int]:
    found, cursor = [], None
    while True:
        page = await store.list_traces(project, text=text, cursor=cursor, **filters)
        found += [int(t.trace_id, 16) for t in page.items]
        if (cursor := page.next_cursor) is None:
            return found


async def scanned(db: Database, project: int, text: str) -> list[int]:
    """What a full scan of the summaries finds: the list's ILIKE, without the filters."""
    async with db.connection() as conn:
        cur = await conn.execute(
            f"""SELECT trace_id FROM analytics.trace_summaries WHERE project_id = %s
                  AND {text_index.PREVIEWS} ILIKE '%%' || replace(replace(replace(%s, '\\', '\\\\'), '%%', '\\%%'),
                                                            '_', '\\_') || '%%'
                ORDER BY start_time DESC, trace_id DESC""",  # noqa: S608 (constant)
            (project, text),
        )
        return [int(r["trace_id"].hex(), 16) for r in await cur.fetchall()]


async def test_searches_find_what_a_full_scan_finds(db: Database, store: PostgresSpanStore, project: int) -> None:
    rng = random.Random(3)
    words = ["refund", "order", "Straße", "ΟΔΟΣ", "İstanbul", "KELVIN", "naïve", "50%_off", "a\\b", "中文检索"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randrange(1, 5))) for _ in range(120)]
    spans = [root(n, n % 30, text, output=rng.choice(["", "answer", "ΣΊΣΥΦΟΣ"])) for n, text in enumerate(texts, 1)]
    for i in range(0, len(spans), 16):
        await store.load(project, spans[i : i + 16])
    queries = [w for word in words for w in case_variants(word)] + ["ssa", "ODOS", "δος", "nd ord", "fo", "zebra"]
    for query in queries:
        expected = await scanned(db, project, query)
        assert await search(store, project, query) == expected, query
    assert await search(store, project, "zebra") == [] and await scanned(db, project, "Refund")


async def test_a_rare_word_reads_only_its_hours_and_pages_run_across_them(
    db: Database, store: PostgresSpanStore, project: int
) -> None:
    common = "how do I get a refund for my order"
    await store.load(project, [root(n, n % 48, common) for n in range(1, 481)])
    rare = {500: 3, 501: 3, 502: 3, 503: 20, 504: 40, 505: 41}  # trace -> hour
    await store.load(project, [root(n, hour, f"the zebra crossing {n}") for n, hour in rare.items()])

    async with db.connection() as conn:
        scopes = await text_index.scopes(conn, project, "Zebra", None, None)
    assert scopes == [
        text_index.Scope(BASE + timedelta(hours=40), BASE + timedelta(hours=42)),  # two touching hours: one run
        text_index.Scope(BASE + timedelta(hours=20), BASE + timedelta(hours=21)),
        text_index.Scope(BASE + timedelta(hours=3), BASE + timedelta(hours=4)),
    ]
    async with db.connection() as conn:
        assert len(await text_index.scopes(conn, project, "refund", None, None)) == 1  # every hour: one run

    newest_first = sorted(rare, key=lambda n: (rare[n], n), reverse=True)
    for limit in (1, 2, 4, 50):
        found, cursor = [], None
        while True:
            page = await store.list_traces(project, text="zebra", limit=limit, cursor=cursor)
            found += [int(t.trace_id, 16) for t in page.items]
            if (cursor := page.next_cursor) is None:
                break
        assert found == newest_first, limit
    start = BASE + timedelta(hours=3, minutes=30)
    assert await search(store, project, "zebra", start=start) == newest_first[:3]
    assert await search(store, project, "zebra", end=BASE + timedelta(hours=21)) == [503, 502, 501, 500]
    assert len(await search(store, project, "REFUND", limit=200)) == 480


async def test_a_trace_whose_start_moves_to_an_earlier_hour_is_found_there(
    store: PostgresSpanStore, project: int
) -> None:
    parent = root(7, 5, "first words")
    later = parent.start_ns + 3 * HOUR_NS
    child = parent._replace(span_id="00000000000000aa", parent_span_id=parent.span_id, start_ns=later,
                    end_ns=later + 1000, input="child words")  # fmt: skip
    await store.load(project, [child])  # alone: the summary starts at hour 8 with the child's previews
    assert await search(store, project, "child words") == [7]
    await store.load(project, [parent])  # the root: starts at hour 5, its previews win
    assert await search(store, project, "first words") == [7]
    assert await search(store, project, "child words") == []


async def test_summaries_stored_before_the_filters_are_searched_in_full(
    db: Database, store: PostgresSpanStore, project: int
) -> None:
    await store.load(project, [root(1, 30, "zebra with a filter")])
    async with db.transaction() as conn:  # as 0018 leaves an upgraded database: summaries without filters
        await conn.execute("UPDATE analytics.trace_text_coverage SET since = %s", (BASE + timedelta(hours=10),))
        await conn.execute(
            """INSERT INTO analytics.trace_summaries (project_id, trace_id, start_time, end_time, name, span_count,
                   error_count, tokens_in, tokens_out, cost_usd, unpriced_count, models, input_preview)
               SELECT %s, decode(lpad(to_hex(n), 32, '0'), 'hex'), %s + n * interval '1 hour', %s + n * interval '1 hour',
                      'old', 1, 0, 0, 0, 0, 0, '{}', 'a zebra from before'
                 FROM unnest(ARRAY[2, 9, 20]) AS n""",
            (project, BASE, BASE),
        )
    # Hours 2 and 9 are before `since`, searched in full; hour 20 is after it and has no filter: the
    # search skips it, which shows that the filters do decide what is read.
    assert await search(store, project, "zebra") == [1, 9, 2]
    assert await search(store, project, "zebra", start=BASE + timedelta(hours=5)) == [1, 9]
    # A span of trace 9 arrives now: its summary (before `since`) gets a filter too, and is still found once.
    await store.load(project, [span(9, 1, parent=0, at=(BASE_HOURS + 9) * HOUR_NS + 30 * MINUTE, input="more")])
    async with db.connection() as conn:
        cur = await conn.execute("SELECT hour FROM analytics.trace_text_blocks WHERE project_id = %s", (project,))
        assert BASE + timedelta(hours=9) in [r["hour"] for r in await cur.fetchall()]
    assert await search(store, project, "zebra") == [1, 9, 2]
    assert await search(store, project, "zebra", limit=1) == [1, 9, 2]


async def test_retention_drops_the_filters_with_the_days(db: Database, store: PostgresSpanStore, project: int) -> None:
    await store.load(project, [root(1, 1, "zebra"), root(2, 47, "zebra")])
    today = datetime.now(UTC).date()
    await purge_traces(db, store, default_days=1, today=today)
    async with db.connection() as conn:
        cur = await conn.execute("SELECT hour FROM analytics.trace_text_blocks WHERE project_id = %s", (project,))
        hours = [r["hour"] for r in await cur.fetchall()]
    assert hours == [BASE + timedelta(hours=47)]
    assert await search(store, project, "zebra") == [2]
