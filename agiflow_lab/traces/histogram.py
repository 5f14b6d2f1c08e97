"""Latency histograms that add: one fixed set of log-scale buckets shared by every rollup row.

Percentiles cannot be averaged, but counts per bucket can be summed: a p95 over an hour, a model or a
whole project is the quantile of the sum of the minute rows' histograms. That only works if every row
uses the same edges, so the edges are fixed here and stored data depends on them. Changing ``GROWTH``,
``LOWEST_MS`` or ``LOG_BUCKETS`` makes every stored ``latency_hist`` mean something else: it needs a
migration that rewrites the rollups, not just an edit.

Layout (``BUCKETS`` = 142 counts):
- bucket 0: [0, 1 ms);
- bucket k for 1 <= k <= 140: [1.1^(k-1), 1.1^k) ms, so the last one ends at 1.1^140 ms ~ 10.4 minutes;
- bucket 141: 10.4 minutes and longer.

Error bound: ``quantile`` returns, for the bucket holding the value of the requested rank, the value
2·lo·hi/(lo+hi). Any x in [lo, hi) is within (hi-lo)/(hi+lo) = (γ-1)/(γ+1) = 0.1/2.1 < 4.77% of it
(relative to x), for γ = 1.1. Outside the log range the bound is absolute instead: under 1 ms the answer
is 0.5 ms (within 0.5 ms), and from 10.4 minutes on it is the bucket's lower edge ("at least").
142 buckets at 4.8% rather than a few hundred at 2.4%: a rollup row stores the range of buckets its
spans used, and the loader and the metrics API add arrays element by element, so coarser buckets make
shorter arrays everywhere; 5% is well inside what a latency percentile on a dashboard needs.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence

GROWTH = 1.1
LOWEST_MS = 1.0
LOG_BUCKETS = 140  # 1.1**140 ms ~ 623 s: just past the 10 minutes an LLM call is ever given
BUCKETS = LOG_BUCKETS + 2  # plus the one below 1 ms and the one past the last edge
RELATIVE_ERROR = (GROWTH - 1) / (GROWTH + 1)  # the bound on quantile() inside the log range

# EDGES[k] is where bucket k+1 starts; bisect on them is exact (no log() rounding at an edge).
EDGES: tuple[float, ...] = tuple(LOWEST_MS * GROWTH**k for k in range(LOG_BUCKETS + 1))


def bucket_of(ms: float) -> int:
    """The bucket a latency falls in; negative or NaN latencies count as 0 ms."""
    if not ms > 0:  # NaN too
        return 0
    return bisect_right(EDGES, ms)


def empty() -> list[int]:
    return [0] * BUCKETS


def of(latencies_ms: Iterable[float]) -> list[int]:
    counts = empty()
    for ms in latencies_ms:
        counts[bucket_of(ms)] += 1
    return counts


def from_range(lowest: int, counts: Sequence[int]) -> list[int]:
    """The full histogram from the counts of buckets ``lowest``, ``lowest + 1``, ... (how the rollups
    store one: an array subscripted by bucket number, from the lowest bucket used to the highest)."""
    if lowest < 0 or lowest + len(counts) > BUCKETS:
        raise ValueError(f"buckets {lowest}..{lowest + len(counts) - 1} are not all within 0..{BUCKETS - 1}")
    full = empty()
    full[lowest : lowest + len(counts)] = counts
    return full


def merge(a: Sequence[int], b: Sequence[int]) -> list[int]:
    if len(a) != BUCKETS or len(b) != BUCKETS:
        raise ValueError(f"a latency histogram has {BUCKETS} buckets")
    return [x + y for x, y in zip(a, b, strict=True)]


def representative(bucket: int) -> float:
    """The value reported for a bucket: the one minimising the worst relative error over its range."""
    if bucket <= 0:
        return LOWEST_MS / 2
    if bucket > LOG_BUCKETS:
        return EDGES[-1]
    lo, hi = EDGES[bucket - 1], EDGES[bucket]
    return 2 * lo * hi / (lo + hi)


def rank(total: int, q: float) -> int:
    """The 0-based rank whose value is the q-quantile (nearest rank: the smallest value with at least
    q of the values at or below it), so a p99 is a latency some span really had, give or take the bound."""
    return min(total - 1, max(0, math.ceil(q * total) - 1))


def quantile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 <= q <= 1) in ms within ``RELATIVE_ERROR``; None for an empty histogram."""
    if not 0 <= q <= 1:
        raise ValueError("q must be between 0 and 1")
    total = sum(counts)
    if total <= 0:
        return None
    target = rank(total, q)
    seen = 0
    for bucket, n in enumerate(counts):
        seen += n
        if seen > target:
            return representative(bucket)
    raise AssertionError("unreachable: the ranks add up to total")
