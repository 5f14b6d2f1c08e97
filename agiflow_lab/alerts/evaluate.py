"""One rule's state machine, as a function of what it was, whether the metric breaches, and now.

    ok/resolved --breach--> pending (or firing at once with for=0) --breached for `for`--> firing
    pending --clear--> ok;  firing --clear--> resolved;  resolved --clear--> ok

Only ``fire`` and ``resolve`` open and close an incident, so an incident is one of each however many times
the rule is evaluated while it fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from agiflow_lab.alerts.models import Comparison, RuleState

Change = Literal["fire", "resolve"] | None


def breaches(value: float | None, comparison: Comparison, threshold: float) -> bool:
    """No data never breaches (an error rate of a project without traffic is not an error)."""
    if value is None:
        return False
    match comparison:
        case ">":
            return value > threshold
        case ">=":
            return value >= threshold
        case "<":
            return value < threshold
        case "<=":
            return value <= threshold


@dataclass(frozen=True)
class Step:
    state: RuleState
    pending_since: datetime | None
    change: Change


def step(state: RuleState, pending_since: datetime | None, breach: bool, now: datetime, for_seconds: int) -> Step:
    if not breach:
        if state == "firing":
            return Step("resolved", None, "resolve")
        return Step("ok", None, None)
    if state == "firing":
        return Step("firing", pending_since, None)
    since = pending_since if state == "pending" and pending_since is not None else now
    if now - since >= timedelta(seconds=for_seconds):
        return Step("firing", since, "fire")
    return Step("pending", since, None)
