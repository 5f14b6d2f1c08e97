"""Retrying model calls: one policy for every vendor, so the SDKs' own retries are switched off.

Backoff is exponential with full jitter (a random wait between 0 and the exponential cap): when a
rate limit hits many concurrent calls at once, full jitter spreads their retries out instead of
sending them back in a synchronised wave. A server's ``Retry-After`` wins over the computed wait, but is
capped so one bad header cannot stall a run.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from agiflow_lab.providers.base import Completion, CompletionRequest, ProviderClient, ProviderError

# 408 request timeout, 409 conflict (OpenAI uses it for transient lock contention), 429 rate limit.
RETRYABLE_4XX = frozenset({408, 409, 429})


def retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_4XX


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date); None if absent."""
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        cap = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return (rng or random).uniform(0, cap)


async def complete_with_retries(
    client: ProviderClient,
    request: CompletionRequest,
    policy: RetryPolicy | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Completion:
    """``client.complete`` with retries for retryable errors; ``Completion.attempts`` counts the tries.

    A non-retryable error is raised at once. When retries run out, the last error is raised again with
    the attempt count in its message (and in ``attempts``).
    """
    policy = policy or RetryPolicy()
    attempt = 0
    while True:
        attempt += 1
        try:
            completion = await client.complete(request)
        except ProviderError as exc:
            exc.attempts = attempt
            if not exc.retryable:
                raise
            if attempt > policy.max_retries:
                raise ProviderError(
                    f"{exc} (gave up after {attempt} attempts)", status=exc.status, retryable=True,
                    retry_after=exc.retry_after, attempts=attempt,
                ) from exc  # fmt: skip
            await sleep(policy.delay(attempt, exc.retry_after))
            continue
        return completion if completion.attempts == attempt else replace(completion, attempts=attempt)
