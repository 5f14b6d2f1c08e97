"""``client.schedules``: notebook jobs and evaluation runs on a cron expression or an interval.

    client.schedules.create("nightly-qa", cron="0 3 * * *", timezone="Europe/Berlin",
                            eval={"prompt": {"name": "qa", "label": "production"}, "dataset": {"name": "qa"},
                                  "model": {"connection": "echo"}, "evaluators": [{"type": "exact_match"}]})
    client.schedules.create("hourly", interval_seconds=3600, job="builtin:hello", overlap="skip")

A schedule is named in its project; ``firings(name)`` is its history with the job (and run) each firing started.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from agiflow_lab.schedules.models import Firing, FiringOutcome, MissedPolicy, OverlapPolicy, Schedule
from agiflow_lab.sdk.transport import Transport, segment

PAGE = 200


def _target(value: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """A job target: its submission body, or just the notebook (``"builtin:hello"``)."""
    return {"notebook": value} if isinstance(value, str) else value


class Schedules:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _base(self, name: str | None = None) -> str:
        base = f"projects/{segment(self.project)}/schedules"
        return base if name is None else f"{base}/{segment(name)}"

    def create(
        self,
        name: str,
        *,
        cron: str | None = None,
        timezone: str | None = None,
        interval_seconds: int | None = None,
        job: str | dict[str, Any] | None = None,
        eval: dict[str, Any] | None = None,  # the API's field name
        start_at: datetime | None = None,
        missed: MissedPolicy | None = None,
        max_catch_up: int | None = None,
        misfire_grace_seconds: int | None = None,
        overlap: OverlapPolicy | None = None,
        pass_rate_gate: float | None = None,
        paused: bool | None = None,
        description: str | None = None,
    ) -> Schedule:
        """A new schedule: ``cron`` (in ``timezone``, default UTC) or ``interval_seconds``; a ``job`` (the body
        of a job submission, or a notebook name) or an ``eval`` (the body of an evaluation run); with an ``eval``,
        a run ending below ``pass_rate_gate`` (0–1) is announced to the project's notification channels."""
        body = {
            "name": name, "cron": cron, "timezone": timezone, "interval_seconds": interval_seconds,
            "job": _target(job), "eval": eval, "start_at": None if start_at is None else start_at.isoformat(),
            "missed": missed, "max_catch_up": max_catch_up, "misfire_grace_seconds": misfire_grace_seconds,
            "overlap": overlap, "pass_rate_gate": pass_rate_gate, "paused": paused, "description": description,
        }  # fmt: skip
        answer = self._t.request("POST", self._base(), json={k: v for k, v in body.items() if v is not None})
        return Schedule.model_validate(answer)

    def list(self, *, paused: bool | None = None, target: str | None = None, limit: int | None = None) -> builtins.list[
        Schedule
    ]:  # fmt: skip
        """Newest first, every page (or the first ``limit`` schedules)."""
        params = {"paused": None if paused is None else str(paused).lower(), "target": target}
        return [Schedule.model_validate(s) for s in self._t.items(self._base(), params, limit=limit, page_size=PAGE)]

    def get(self, name: str) -> Schedule:
        return Schedule.model_validate(self._t.request("GET", self._base(name)))

    def update(self, name: str, **changes: Any) -> Schedule:
        """Change only the fields given (``None`` clears: ``update(n, cron=None, interval_seconds=60)``)."""
        if "job" in changes:
            changes["job"] = _target(changes["job"])
        if isinstance(changes.get("start_at"), datetime):
            changes["start_at"] = changes["start_at"].isoformat()
        return Schedule.model_validate(self._t.request("PATCH", self._base(name), json=changes))

    def pause(self, name: str) -> Schedule:
        return Schedule.model_validate(self._t.request("POST", f"{self._base(name)}/pause"))

    def resume(self, name: str) -> Schedule:
        """Go on from the next tick; ticks while paused are not fired."""
        return Schedule.model_validate(self._t.request("POST", f"{self._base(name)}/resume"))

    def run_now(self, name: str) -> Firing:
        """Fire once now, whatever the overlap policy; the firing names the job (and run) it started."""
        return Firing.model_validate(self._t.request("POST", f"{self._base(name)}/run"))

    def delete(self, name: str) -> None:
        """The schedule and its history go; the jobs and runs it started stay."""
        self._t.request("DELETE", self._base(name))

    def firings(self, name: str, *, outcome: FiringOutcome | None = None, limit: int | None = 100) -> builtins.list[
        Firing
    ]:  # fmt: skip
        """Newest first: the tick, the outcome, and the job and run each firing started."""
        rows = self._t.items(f"{self._base(name)}/firings", {"outcome": outcome}, limit=limit, page_size=PAGE)
        return [Firing.model_validate(f) for f in rows]
