"""When a schedule's ticks fall, and which of them a scheduler pass fires: pure functions of a given ``now``.

A tick is a point in time the schedule names (``0 3 * * *`` in Europe/Berlin, or every 300 s from an anchor).
A pass handles the ticks from the schedule's ``next_fire_at`` up to ``now``:

- ticks within ``grace`` of ``now`` are on time and each fires (a scheduler woken a little late, a leader
  taken over after a replica died, still fires every tick once);
- older ticks were missed (every replica was down) and the schedule's policy decides: ``skip`` fires none
  of them, ``run_once`` fires the latest one, ``catch_up`` fires the latest ``max_catch_up`` of them.

Only the ticks that may fire are ever enumerated (backwards from the cut-off for missed ones), so a month of
downtime on a per-minute schedule costs a handful of steps, not forty thousand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_US = timedelta(microseconds=1)
MAX_ON_TIME = 1000  # on-time ticks handled in one pass; the rest are handled by the next one


def check_cron(expression: str) -> str:
    """A five-field cron expression (or an alias such as ``@daily``), else ``ValueError`` saying why."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text == "@reboot" or not croniter.is_valid(text):
            raise ValueError("unknown cron alias; use @yearly, @monthly, @weekly, @daily or @hourly")
        return text
    if len(text.split(" ")) != 5:
        raise ValueError("a cron expression has five fields: minute hour day-of-month month day-of-week")
    if not croniter.is_valid(text):
        raise ValueError("not a valid cron expression")
    return text


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'") from None
    return name


@dataclass(frozen=True)
class Timing:
    """Either ``cron`` in ``timezone`` or every ``interval`` seconds from ``anchor``; no tick is before ``anchor``."""

    cron: str | None
    timezone: str
    interval: int | None
    anchor: datetime

    def at_or_after(self, t: datetime) -> datetime:
        t = max(t, self.anchor)
        if self.interval is not None:
            steps = -(-_micros(t - self.anchor) // (self.interval * 1_000_000))  # ceil
            return self._nth(steps)
        return self._next(t - _US)

    def after(self, t: datetime) -> datetime:
        return self.at_or_after(t + _US)

    def before(self, t: datetime) -> datetime | None:
        """The latest tick strictly before ``t``; None when there is none (before the anchor)."""
        if t <= self.anchor:
            return None
        if self.interval is not None:
            steps = (_micros(t - self.anchor) - 1) // (self.interval * 1_000_000)
            return self._nth(steps)
        assert self.cron is not None
        previous: datetime = croniter(self.cron, t.astimezone(ZoneInfo(self.timezone))).get_prev(datetime)
        previous = previous.astimezone(UTC)
        return previous if previous >= self.anchor else None

    def upcoming(self, start: datetime, n: int) -> list[datetime]:
        """``n`` ticks from ``start`` on (``start`` itself if it is one)."""
        ticks = [self.at_or_after(start)] if n > 0 else []
        while len(ticks) < n:
            ticks.append(self.after(ticks[-1]))
        return ticks

    def _nth(self, steps: int) -> datetime:
        assert self.interval is not None
        return self.anchor + timedelta(seconds=self.interval * steps)

    def _next(self, t: datetime) -> datetime:
        assert self.cron is not None
        following: datetime = croniter(self.cron, t.astimezone(ZoneInfo(self.timezone))).get_next(datetime)
        return following.astimezone(UTC)


@dataclass(frozen=True)
class Plan:
    fire: list[datetime]  # oldest first
    missed: int  # ticks that were missed and will not fire (at least this many; counted only when cheap)
    next_fire_at: datetime  # the first tick after ``now``: where the next pass starts


def plan(
    timing: Timing, next_fire_at: datetime, now: datetime, *, grace: float, missed: str, max_catch_up: int
) -> Plan:
    """The ticks in [``next_fire_at``, ``now``] that fire now, by the rules in the module docstring."""
    cutoff = now - timedelta(seconds=grace)
    keep = {"skip": 0, "run_once": 1, "catch_up": max_catch_up}[missed]
    late: list[datetime] = []  # missed ticks that fire: the latest ``keep`` before the cut-off
    t = timing.before(cutoff)
    while t is not None and t >= next_fire_at and len(late) < keep:
        late.append(t)
        t = timing.before(t)
    dropped = 0 if t is None or t < next_fire_at else 1  # at least one more was missed
    on_time: list[datetime] = []
    t = timing.at_or_after(max(next_fire_at, cutoff))
    while t <= now and len(on_time) < MAX_ON_TIME:
        on_time.append(t)
        t = timing.after(t)
    if timing.interval is not None:  # evenly spaced: the missed ticks are counted exactly
        first, period = timing.at_or_after(next_fire_at), timing.interval * 1_000_000
        total = max(0, -(-_micros(cutoff - first) // period)) if first < cutoff else 0
        dropped = total - len(late)
    return Plan(fire=sorted(late) + on_time, missed=dropped, next_fire_at=t)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
