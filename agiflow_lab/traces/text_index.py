"""Which hours of a project's traces can contain a piece of text: a trigram Bloom filter per project-hour.

Free text in the trace list is ``ILIKE '%text%'`` on the summaries' previews, which no ordinary index
serves. A trigram GIN index would, but costs the loader a third of its speed (measured in
0018_trace_text_blocks.sql). This costs it one upsert per hour a batch touches: the loader ORs the byte
trigrams of each summary's previews, as they stand after its upsert, into the filter of the hour the
trace starts in. A search then reads the hours whose filter holds every trigram of the text, newest
first, and skips the rest: for a rare word over 30 days, a few hours instead of all 720 (the skip index
of a column store, ClickHouse's ``ngrambf_v1``, in Postgres).

A filter only ever gains bits, so it may say yes for an hour without the text (the search then scans
that hour and finds nothing), never no for an hour with it. That rests on the folding below: whenever
Postgres's ILIKE finds the text in the previews, ``fold(previews)`` contains ``fold(text)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from agiflow_lab.db.database import Conn

if TYPE_CHECKING:
    import numpy as np

LOG2_BITS = 16
BITS = 1 << LOG2_BITS  # per project-hour: 8 KiB (sized in 0018_trace_text_blocks.sql)
_SHIFT = 32 - LOG2_BITS  # a hash's top bits are the position
_MIXERS = (0x9E3779B1, 0x85EBCA77)  # two hashes per trigram (multiplicative, odd)
HOUR = timedelta(hours=1)
# Filters travel as bytea (binary, no text to parse) and become bit strings, which Postgres can OR and AND.
_AS_BITS = "('x' || encode({}, 'hex'))::bit(" + str(BITS) + ")"
# The text a search matches (the list's ILIKE) and the filters index: a summary's previews.
PREVIEWS = "(coalesce(input_preview, '') || ' ' || coalesce(output_preview, ''))"


def fold(text: str) -> bytes:
    """The bytes whose trigrams are indexed and searched.

    Case folding is per character and without context (unlike ``lower``, which turns a final Σ into ς),
    so a substring of the text folds to a substring of the folded text; and whatever case mapping
    Postgres's ILIKE uses (libc, ICU or none for non-ASCII in the C locale) maps a character to one of
    the same fold, except İ, which libc lowers to i and casefold to i + U+0307: that pair becomes i."""
    return text.casefold().replace("i\u0307", "i").encode("utf-8", "surrogatepass")


# numpy is imported on first use: the server imports this module at start (for searches) and would
# otherwise pay numpy's import (~0.1 s) before it needs it.


def _positions(data: bytes) -> np.ndarray:
    import numpy as np  # noqa: PLC0415 (see above)

    codes = np.frombuffer(data, dtype=np.uint8).astype(np.uint32)
    grams = (codes[:-2] << 16) | (codes[1:-1] << 8) | codes[2:]
    return np.concatenate([(grams * np.uint32(mixer)) >> np.uint32(_SHIFT) for mixer in _MIXERS])


def _bits(positions: np.ndarray) -> bytes:
    """The filter's bytes, bit 0 first (the order of ``_AS_BITS``)."""
    import numpy as np  # noqa: PLC0415 (see above)

    flags = np.zeros(BITS, dtype=np.bool_)
    flags[positions] = True
    return np.packbits(flags).tobytes()


def filter_of(texts: Iterable[str]) -> bytes:
    """One filter holding the trigrams of every text (newline-joined: a trigram across two texts only
    adds a bit that no search needs)."""
    return _bits(_positions(fold("\n".join(texts))))


def mask_of(text: str) -> bytes | None:
    """The bits an hour's filter must hold for the text to be in it; None when the text cannot be
    looked up this way (under three bytes once folded, or a combining dot, which folding may move)."""
    folded = fold(text)
    if len(folded) < 3 or "\u0307".encode() in folded:
        return None
    return _bits(_positions(folded))


async def add(conn: Conn, project_id: int, summaries: Sequence[tuple[datetime, str]]) -> None:
    """OR each (start time, previews) into its hour's filter: one row per hour, in key order (concurrent
    loaders queue on a shared hour instead of deadlocking)."""
    hours: dict[datetime, list[str]] = {}
    for start, previews in summaries:
        hours.setdefault(_hour_of(start), []).append(previews)
    if not hours:
        return
    keys = sorted(hours)
    await conn.execute(
        f"""INSERT INTO analytics.trace_text_blocks AS b (project_id, hour, grams)
            SELECT %s, h.hour, {_AS_BITS.format("h.grams")} FROM unnest(%s::timestamptz[], %s::bytea[]) AS h(hour, grams)
            ON CONFLICT (project_id, hour) DO UPDATE SET grams = b.grams | EXCLUDED.grams""",  # noqa: S608 (constant)
        (project_id, keys, [filter_of(hours[k]) for k in keys]),
    )


@dataclass(frozen=True)
class Scope:
    """A stretch of start times [low, high) to search; None is open-ended."""

    low: datetime | None
    high: datetime | None


async def scopes(conn: Conn, project_id: int, text: str, start: datetime | None, end: datetime | None) -> list[Scope]:
    """The stretches of [start, end) that can hold ``text``, newest first: runs of adjacent hours whose
    filter holds its trigrams, then everything before the filters began (traces loaded before
    0018_trace_text_blocks.sql; nothing on a database created since). One open scope when the text
    cannot be looked up."""
    mask = mask_of(text)
    if mask is None:
        return [Scope(start, end)]
    # One round trip: the matching hours and where the filters begin.
    cur = await conn.execute(
        f"""WITH m AS (SELECT {_AS_BITS.format("%s::bytea")} AS mask)
            SELECT ARRAY(SELECT b.hour FROM analytics.trace_text_blocks b, m
                          WHERE b.project_id = %s AND b.hour >= coalesce(%s::timestamptz, '-infinity')
                            AND b.hour < coalesce(%s::timestamptz, 'infinity') AND b.grams & m.mask = m.mask
                          ORDER BY b.hour DESC) AS hours,
                   (SELECT since FROM analytics.trace_text_coverage) AS since""",  # noqa: S608 (constant)
        (mask, project_id, None if start is None else _hour_of(start), end),
    )
    row = await cur.fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    hours: list[datetime] = row["hours"]
    since: datetime | None = row["since"]
    runs: list[tuple[datetime, datetime]] = []
    for hour in hours:  # newest first: extend the run below while the hours touch
        if runs and runs[-1][0] == hour + HOUR:
            runs[-1] = (hour, runs[-1][1])
        else:
            runs.append((hour, hour + HOUR))
    if since is None:
        return [_clip(Scope(*run), start, end) for run in runs]
    # Before `since` everything is scanned (the last scope); a filter there (a summary stored before the
    # filters and changed since) must not have its hour searched twice.
    low = since if start is None or start < since else start
    covered = [_clip(Scope(*run), low, end) for run in runs if run[1] > since]
    if start is None or start < since:
        covered.append(_clip(Scope(start, since), start, end))
    return covered


def _hour_of(at: datetime) -> datetime:
    """The UTC hour ``at`` falls in (a session time zone may be half an hour off UTC)."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _clip(scope: Scope, start: datetime | None, end: datetime | None) -> Scope:
    low = scope.low if start is None or (scope.low is not None and scope.low > start) else start
    high = scope.high if end is None or (scope.high is not None and scope.high < end) else end
    return Scope(low, high)
