"""Span store load throughput: spans/s through ``PostgresSpanStore.load`` against a raw COPY ceiling.

    python bench/span_store.py [--spans 200000] [--batch 512] [--loaders 1,2] [--keep]

One embedded Postgres (``tests.support.servers.start_postgres``), a fresh migrated database per measurement,
and ``--spans`` generated spans shaped like an instrumented LLM app's: traces of 8 spans (an agent root, a
retriever, two chat calls with model, tokens, cost, a few hundred characters of input and output, two tools,
an embedding and a guardrail), 9-12 attributes each, 50 users, 200 sessions, 3 prompts, one resource per
batch, start times over the last hour. Batches of ``--batch`` in trace order, as the span writer gets them.

Figures, each the spans divided by the wall time of the whole run:
(a) ceiling: the same rows (``loading.encode``, the loader's own conversion) binary-COPYed into an unindexed,
    unpartitioned copy of ``analytics.spans``, one transaction per batch: what Postgres takes at best;
(b) load: ``PostgresSpanStore.load`` per batch (partitions, COPY into the partitioned table with its primary
    key, trace summaries and metric rollups), with 1 loader and with N loaders on their own connections
    sharing the batches (asyncio, one process: the Python side is one core however many loaders);
(c) redelivery: every batch loaded again (nothing inserted), unflagged (the direct COPY fails and is undone,
    then the staging path) and flagged ``redelivery=True`` (the staging path only);
(d) text search on the trace list (``list_traces(text=...)``, 50 per page, best of 5) for a word in one
    trace and for one in most, with the per-hour text filters (0018; all of this run is in one or two
    hours, so they cannot skip much here: ``bench/ingest.py --query`` spreads traces over 30 days) and
    with the trigram index 0009 leaves out, and the load again (a fresh database) with that index, and
    without the text filters (``text_index.add`` skipped): what each costs the loader.
Then the ratio (b)/(a) against the issue's target of 45%, and what the tables hold. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agiflow_lab.db import migrate  # noqa: E402
from agiflow_lab.db.database import Database  # noqa: E402
from agiflow_lab.traces import loading, text_index  # noqa: E402
from agiflow_lab.traces.records import SpanRecord  # noqa: E402
from agiflow_lab.traces.store import PostgresSpanStore  # noqa: E402
from tests.support.servers import create_database, start_postgres  # noqa: E402

TARGET_RATIO = 0.45
TRACE_SHAPE = (  # name, span_type, model, parent index
    ("agent run", "agent", None, None),
    ("retrieve docs", "retriever", None, 0),
    ("chat gpt-4o-mini", "chat", "gpt-4o-mini", 0),
    ("tool search", "tool", None, 2),
    ("chat gpt-4o", "chat", "gpt-4o", 0),
    ("tool calculator", "tool", None, 4),
    ("embed query", "embedding", "text-embedding-3-small", 1),
    ("guardrail", "guardrail", None, 0),
)
RARE = "the zebra crossing question"  # one root's input, for a selective text search
WORDS = "the a answer question model latency token prompt user policy refund order invoice shipping".split()
# Beyond the common words, text as varied as an app's: 3,000 made-up words and order numbers, so an hour's
# previews hold tens of thousands of distinct trigrams (what sizes the text filters, text_index.py).
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
RARE_WORDS = sorted({"".join(random.Random(k).choices(_SYLLABLES, k=3)) for k in range(3000)} - {"zebra"})


def text(rng: random.Random, words: int) -> str:
    out = []
    for _ in range(words):
        roll = rng.random()
        out.append(
            rng.choice(WORDS) if roll < 0.6 else rng.choice(RARE_WORDS) if roll < 0.9 else f"#{rng.randrange(10**6)}"
        )
    return " ".join(out)


def generate(n_spans: int, batch: int, seed: int = 7) -> list[list[SpanRecord]]:
    rng = random.Random(seed)
    now_ns = time.time_ns()
    start0 = now_ns - 3_600 * 10**9
    step = 3_600 * 10**9 // max(1, n_spans // len(TRACE_SHAPE))
    spans: list[SpanRecord] = []
    trace_no = 0
    while len(spans) < n_spans:
        trace_no += 1
        trace_id = rng.getrandbits(128).to_bytes(16, "big").hex()
        ids = [rng.getrandbits(64).to_bytes(8, "big").hex() for _ in TRACE_SHAPE]
        t0 = start0 + trace_no * step
        user = f"user-{rng.randrange(50)}"
        session = f"session-{rng.randrange(200)}"
        prompt = f"prompt-{rng.randrange(3)}"
        for i, (name, span_type, model, parent) in enumerate(TRACE_SHAPE):
            start = t0 + i * 20_000_000
            duration = int(rng.lognormvariate(6.0, 1.0) * 1_000_000) if model else rng.randrange(1, 50) * 1_000_000
            tokens_in = rng.randrange(50, 2000) if model else None
            tokens_out = rng.randrange(10, 500) if model else None
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": span_type,
                "gen_ai.system": "openai",
                "session.id": session,
                "user.id": user,
                "deployment.environment": "prod",
                "http.status_code": 200,
                "retry.count": 0,
                "agiflow.prompt.name": prompt,
                "agiflow.prompt.version": 3,
            }
            if model:
                attributes |= {
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": tokens_in,
                    "gen_ai.usage.output_tokens": tokens_out,
                }
            spans.append(
                SpanRecord(
                    trace_id=trace_id, span_id=ids[i], parent_span_id=None if parent is None else ids[parent],
                    name=name, kind="client" if model else "internal", start_ns=start, end_ns=start + duration,
                    status="error" if rng.random() < 0.02 else "ok", status_message=None, service_name="support-bot",
                    scope_name="openinference.instrumentation", span_type=span_type,  # type: ignore[arg-type]
                    model=model, provider="openai" if model else None,
                    input=(RARE if trace_no == 1000 and parent is None else text(rng, 60)) if model or parent is None
                    else None,
                    output=text(rng, 40) if model or parent is None else None,
                    tokens_in=tokens_in, tokens_out=tokens_out,
                    cost_usd=(tokens_in or 0) * 1.5e-7 + (tokens_out or 0) * 6e-7 if model else None,
                    session_id=session, user_id=user, tags=("bench",), prompt_name=prompt if model else None,
                    prompt_version=3 if model else None, attributes=attributes, events=[], resource_attributes={},
                )
            )  # fmt: skip
    spans = spans[:n_spans]
    batches = [spans[i : i + batch] for i in range(0, len(spans), batch)]
    for k, b in enumerate(batches):  # one resource per batch: its spans share one dict, as decode_body makes them
        resource = {"service.name": "support-bot", "telemetry.sdk.name": "opentelemetry", "host.name": f"pod-{k % 4}"}
        batches[k] = [_with_resource(s, resource) for s in b]
    return batches


def _with_resource(s: SpanRecord, resource: dict[str, Any]) -> SpanRecord:
    return s._replace(resource_attributes=resource)


async def fresh(server: str) -> Database:
    url = await asyncio.to_thread(create_database, server)
    await migrate.upgrade(url)
    db = Database(url, min_size=1, max_size=8)
    await db.open()
    async with db.connection() as conn:
        await conn.execute("INSERT INTO control.projects (slug, name, created_by) VALUES ('bench', 'bench', 'bench')")
    return db


async def ceiling(db: Database, batches: list[list[SpanRecord]]) -> float:
    async with db.connection() as conn:
        await conn.execute("CREATE TABLE public.spans_raw (LIKE analytics.spans INCLUDING DEFAULTS)")
    started = time.perf_counter()
    for batch in batches:
        rows = loading.encode(1, batch)
        async with db.connection() as conn, conn.transaction():
            await loading.copy_rows(conn, "public.spans_raw", rows)
    return time.perf_counter() - started


async def load(
    store: PostgresSpanStore, batches: list[list[SpanRecord]], loaders: int, *, redelivery: bool = False
) -> tuple[float, int]:
    queue = list(reversed(batches))
    inserted = 0

    async def loader() -> None:
        nonlocal inserted
        while queue:
            n = await store.load(1, queue.pop(), redelivery=redelivery)
            inserted += n

    started = time.perf_counter()
    await asyncio.gather(*(loader() for _ in range(loaders)))
    return time.perf_counter() - started, inserted


TRIGRAM_INDEX = """CREATE INDEX trace_summaries_text ON analytics.trace_summaries
    USING gin ((coalesce(input_preview, '') || ' ' || coalesce(output_preview, '')) gin_trgm_ops)"""


async def searches(store: PostgresSpanStore, label: str) -> None:
    for word in ("zebra", "refund"):
        best, found = float("inf"), 0
        for _ in range(5):
            started = time.perf_counter()
            found = len((await store.list_traces(1, text=word, limit=50)).items)
            best = min(best, time.perf_counter() - started)
        print(f"(d) search {word!r} {label}: {best * 1000:.1f} ms ({found} traces on the first page)")


async def _no_filters(*_: object) -> None:
    return None


async def filter_fill(db: Database) -> str:
    async with db.connection() as conn:
        cur = await conn.execute(
            """SELECT count(*) AS hours, avg(bit_count(grams)) AS bits,
                      pg_size_pretty(pg_total_relation_size('analytics.trace_text_blocks')) AS size
                 FROM analytics.trace_text_blocks"""
        )
        r = await cur.fetchone()
    assert r is not None
    share = float(r["bits"] or 0) / text_index.BITS
    return f"{r['hours']} project-hours, {share:.1%} of each one's bits set on average, {r['size']}"


async def sizes(db: Database) -> str:
    async with db.connection() as conn:
        cur = await conn.execute(
            """SELECT (SELECT count(*) FROM analytics.spans) AS spans,
                      (SELECT count(*) FROM analytics.trace_summaries) AS traces,
                      (SELECT count(*) FROM analytics.span_rollups) AS rollups,
                      pg_size_pretty((SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i
                                       WHERE i.inhparent = 'analytics.spans'::regclass)) AS spans_size,
                      pg_size_pretty(pg_total_relation_size('analytics.trace_summaries')) AS traces_size,
                      pg_size_pretty(pg_total_relation_size('analytics.span_rollups')) AS rollups_size"""
        )
        r = await cur.fetchone()
    assert r is not None
    return (
        f"{r['spans']} spans ({r['spans_size']}), {r['traces']} trace summaries ({r['traces_size']}), "
        f"{r['rollups']} rollup rows ({r['rollups_size']})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--loaders", default="1,2", help="comma-separated loader counts to measure")
    parser.add_argument("--keep", action="store_true", help="keep the Postgres data dir")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-spans-"))
    print(f"cores: {os.cpu_count()}; generating {args.spans} spans in batches of {args.batch} ...", flush=True)
    batches = generate(args.spans, args.batch)
    n = sum(len(b) for b in batches)
    try:
        server = await asyncio.to_thread(start_postgres, workdir)
        db = await fresh(server)
        seconds = await ceiling(db, batches)
        await db.close()
        copy_rate = n / seconds
        print(f"(a) ceiling, binary COPY into an unindexed table: {copy_rate:,.0f} spans/s ({seconds:.1f} s)")
        for loaders in [int(x) for x in args.loaders.split(",")]:
            db = await fresh(server)
            store = PostgresSpanStore(db)
            seconds, inserted = await load(store, batches, loaders)
            rate = n / seconds
            print(
                f"(b) load, {loaders} loader(s): {rate:,.0f} spans/s ({seconds:.1f} s, {inserted} inserted): "
                f"{rate / copy_rate:.0%} of the ceiling (target {TARGET_RATIO:.0%})"
            )
            if loaders == 1:
                for flagged in (False, True):
                    seconds, inserted = await load(store, batches, 1, redelivery=flagged)
                    print(
                        f"(c) every batch again, {'flagged' if flagged else 'unflagged'} as a redelivery: "
                        f"{n / seconds:,.0f} spans/s ({inserted} inserted)"
                    )
            print(f"    {await sizes(db)}")
            if loaders == 1:
                print(f"    text filters: {await filter_fill(db)}")
                await searches(store, "with the hour filters")
                async with db.connection() as conn:
                    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                    await conn.execute(TRIGRAM_INDEX)
                    await conn.execute("ANALYZE analytics.trace_summaries")
                await searches(store, "with the trigram index")
            await db.close()
        db = await fresh(server)
        async with db.connection() as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await conn.execute(TRIGRAM_INDEX)
        seconds, _ = await load(PostgresSpanStore(db), batches, 1)
        rate = n / seconds
        print(f"(d) load, 1 loader, with the trigram index: {rate:,.0f} spans/s: {rate / copy_rate:.0%} of the ceiling")
        await db.close()
        db = await fresh(server)
        indexing = text_index.add
        text_index.add = _no_filters  # type: ignore[assignment]  # a measurement: the load without them
        try:
            seconds, _ = await load(PostgresSpanStore(db), batches, 1)
        finally:
            text_index.add = indexing  # type: ignore[assignment]
        rate = n / seconds
        print(
            f"(d) load, 1 loader, without the text filters: {rate:,.0f} spans/s: {rate / copy_rate:.0%} of the ceiling"
        )
        await db.close()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
