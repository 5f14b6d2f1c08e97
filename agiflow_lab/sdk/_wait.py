"""Waiting for something the server finishes (a run, a job): the SDK's one polling loop.

The SDK is synchronous and runs where a WebSocket client may not be installed or allowed (a kernel
behind a proxy, a CI script), so it asks again every ``interval`` seconds; ``on_each`` shows progress.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from agiflow_lab.jobs.models import FINAL_STATES

T = TypeVar("T")
POLL_SECONDS = 0.5


def until_final(
    fetch: Callable[[], T],
    state: Callable[[T], str],
    *,
    what: str,
    timeout: float | None,
    on_each: Callable[[T], None] = lambda _: None,
    interval: float = POLL_SECONDS,
) -> T:
    """``fetch()`` until ``state`` of it is final; TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = fetch()
        on_each(current)
        if state(current) in FINAL_STATES:
            return current
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{what} is still {state(current)} after {timeout} s")
        time.sleep(interval)
