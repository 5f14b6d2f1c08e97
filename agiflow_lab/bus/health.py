"""Whether this process reaches its message bus: a state ``/status`` shows, and one log line per change.

A broker outage makes a client library retry on its own schedule and log every failure: aiokafka logs
two lines per connection attempt, ten attempts a second, for as long as the outage lasts (160,000 lines
in 20 minutes). The outage is one fact, so ``BusHealth`` logs it once when it starts (with the error)
and once when it ends (with how long it lasted). While an outage is reported, ``QuietLibraryLogs``
drops the library's own records (the one line said it all); between outages it lets each of the
library's messages through at most once a minute, so a flapping connection or a warning repeated on
every connect ("username and password in the clear") cannot flood the log either.

Reports come from what uses the bus (a publish that failed or succeeded) and, for a broker that can go
away while nothing is published, from ``watch``: a probe on a capped backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

log = logging.getLogger(__name__)

HealthState = Literal["unknown", "up", "down"]


def describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    reason = getattr(error, "details", None)
    name, message = type(error).__name__, str(error)
    text = message if message.startswith(name) else f"{name}: {message}"
    if isinstance(reason, dict) and reason.get("reason"):
        text += f" ({reason['reason']})"
    return text


class BusHealth:
    """The last known state of one bus in this process; ``up``/``down`` are cheap and idempotent."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.state: HealthState = "unknown"
        self.since = datetime.now(UTC)
        self.error: str | None = None
        self._down_at = 0.0
        self._watcher: asyncio.Task[None] | None = None
        _QUIET.healths.add(self)

    @property
    def is_down(self) -> bool:
        return self.state == "down"

    def up(self) -> None:
        if self.state == "up":
            return
        if self.state == "down":
            log.warning("%s bus reachable again after %.1f s", self.backend, time.monotonic() - self._down_at)
        self.state, self.since, self.error = "up", datetime.now(UTC), None

    def down(self, error: BaseException | str) -> None:
        self.error = describe(error)
        if self.state == "down":
            log.debug("%s bus still unreachable: %s", self.backend, self.error)
            return
        log.warning("%s bus unreachable (%s); retrying with capped backoff, quiet until it is back",
                    self.backend, self.error)  # fmt: skip
        self.state, self.since, self._down_at = "down", datetime.now(UTC), time.monotonic()

    # -- watching -------------------------------------------------------------------------------

    def watch(
        self, probe: Callable[[], Awaitable[object]], *, interval: float = 2.0, timeout: float = 5.0,
        backoff_base: float = 0.5, backoff_max: float = 5.0,
    ) -> None:  # fmt: skip
        """Probe every ``interval`` seconds while up; while down, retry on a backoff capped at
        ``backoff_max``, so recovery is noticed within seconds without hammering a dead broker."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(
                self._watch(probe, interval, timeout, backoff_base, backoff_max), name=f"agiflow-{self.backend}-health"
            )

    async def unwatch(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def _watch(
        self, probe: Callable[[], Awaitable[object]], interval: float, limit: float, base: float, cap: float
    ) -> None:
        failures = 0
        while True:
            try:
                async with asyncio.timeout(limit):
                    await probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                self.down(exc)
                await asyncio.sleep(min(cap, base * 2 ** (failures - 1)))
                continue
            failures = 0
            self.up()
            await asyncio.sleep(interval)


class QuietLibraryLogs(logging.Filter):
    """Silences a client library while one of this process's buses is reported down; otherwise each
    distinct message (logger and format string) passes at most once every ``every`` seconds."""

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self.every = every
        self.healths: weakref.WeakSet[BusHealth] = weakref.WeakSet()
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        if any(h.is_down for h in list(self.healths)):
            return False
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            return False
        if len(self._last) > 1000:  # bounded: formats are few, but a library could log f-strings
            self._last.clear()
        self._last[key] = now
        return True


_QUIET = QuietLibraryLogs()


def quiet_library_logs(prefix: str) -> None:
    """Put the filter on ``prefix``'s logger and every logger under it that exists now (a filter on a
    logger sees only records logged there, not those propagated from its children). Idempotent."""
    manager = logging.Logger.manager
    names = [prefix, *(n for n in list(manager.loggerDict) if n.startswith(prefix + "."))]
    for name in names:
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)
