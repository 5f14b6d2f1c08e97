"""Free text in the trace list, through the per-hour trigram filters (``agiflow_lab.traces.text_index``).

The filters may only skip hours: whatever the list's ILIKE would find in a full scan, it must still find.
Checked first without a database (every substring of a text, in any case, passes the text's filter),
then against the store: searches equal a full ILIKE scan, a rare word reads only its hours, pages run
across hours, and summaries from before the filters are still searched.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.db.database import Database
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.traces import text_index
from agiflow_lab.traces.records import SpanRecord
from agiflow_lab.traces.retention import purge_traces
from agiflow_lab.traces.store import PostgresSpanStore

HOUR_NS = 3600 * 10**9
# Midnight two days ago (UTC): hour n of the tests' traces is BASE + n hours, all in the past.
BASE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
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


# ---------------------------------------------------------------- the store


@pytest.fixture
async def project(db: Database) -> int:
    service = ProjectService(db, Authorizer(db))
    await service.ensure("p", "p", "olivia")
    return await service.resolve_id("p")


@pytest.fixture
def store(db: Database) -> PostgresSpanStore:
    return PostgresSpanStore(db)


def root(n: int, hour: int, text: str, *, minute: int = 7, output: str = "ok") -> SpanRecord:
    start = int(BASE.timestamp()) * 10**9 + hour * HOUR_NS + minute * 60 * 10**9 + n * 1000
    return SpanRecord(
        trace_id=f"{n:032x}", span_id=f"{n:016x}", parent_span_id=None, name="agent", kind="internal",
        start_ns=start, end_ns=start + 10**8, status="ok", status_message=None, service_name="svc",
        scope_name="scope", span_type="other", model=None, provider=None, input=text, output=output,
        tokens_in=None, tokens_out=None, cost_usd=None, session_id=None, user_id=None, tags=(), prompt_name=None,
        prompt_version=None, attributes={}, events=[], resource_attributes={},
    )  # fmt: skip


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
    child = replace(parent, span_id="00000000000000aa", parent_span_id=parent.span_id, start_ns=later,
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


async def test_retention_drops_the_filters_with_the_days(db: Database, store: PostgresSpanStore, project: int) -> None:
    await store.load(project, [root(1, 1, "zebra"), root(2, 47, "zebra")])
    today = datetime.now(UTC).date()
    await purge_traces(db, store, default_days=1, today=today)
    async with db.connection() as conn:
        cur = await conn.execute("SELECT hour FROM analytics.trace_text_blocks WHERE project_id = %s", (project,))
        hours = [r["hour"] for r in await cur.fetchall()]
    assert hours == [BASE + timedelta(hours=47)]
    assert await search(store, project, "zebra") == [2]
