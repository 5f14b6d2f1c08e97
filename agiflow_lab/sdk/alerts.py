"""``client.alerts``: rules on the project's metrics, their incidents (history) and silences.

    client.alerts.create("failures", metric="job_failures", comparison=">=", threshold=1, window_seconds=600)
    client.alerts.create("slow", metric="latency_p95_ms", comparison=">", threshold=2000, for_seconds=300)
    client.alerts.silence(rule="slow", ends_at=datetime.now(UTC) + timedelta(hours=1), reason="deploy")
    client.alerts.incidents("failures")

Notifications of a rule's incidents go to the project's channels (``client.notifications``).
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from agiflow_lab.alerts.models import Comparison, Incident, Metric, Rule, Silence
from agiflow_lab.sdk.transport import Transport, segment

PAGE = 200


class Alerts:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _base(self, what: str) -> str:
        return f"projects/{segment(self.project)}/alerts/{what}"

    def create(
        self, name: str, *, metric: Metric, comparison: Comparison, threshold: float, window_seconds: int | None = None,
        for_seconds: int | None = None, score_name: str | None = None, description: str | None = None,
        enabled: bool | None = None,
    ) -> Rule:  # fmt: skip
        """A rule: ``metric`` over the last ``window_seconds``, ``comparison`` ``threshold``, for ``for_seconds``."""
        body = {"name": name, "metric": metric, "comparison": comparison, "threshold": threshold,
                "window_seconds": window_seconds, "for_seconds": for_seconds, "score_name": score_name,
                "description": description, "enabled": enabled}  # fmt: skip
        answer = self._t.request("POST", self._base("rules"), json={k: v for k, v in body.items() if v is not None})
        return Rule.model_validate(answer)

    def list(self) -> builtins.list[Rule]:
        return [Rule.model_validate(r) for r in self._t.request("GET", self._base("rules"))["items"]]

    def get(self, name: str) -> Rule:
        return Rule.model_validate(self._t.request("GET", self._base(f"rules/{segment(name)}")))

    def update(self, name: str, **changes: Any) -> Rule:
        """Change only the fields given (threshold, comparison, window_seconds, for_seconds, enabled, description)."""
        return Rule.model_validate(self._t.request("PATCH", self._base(f"rules/{segment(name)}"), json=changes))

    def delete(self, name: str) -> None:
        self._t.request("DELETE", self._base(f"rules/{segment(name)}"))

    def incidents(self, rule: str | None = None, *, limit: int | None = 100) -> builtins.list[Incident]:
        """Newest first: when each incident started and resolved, and the values then."""
        rows = self._t.items(self._base("incidents"), {"rule": rule}, limit=limit, page_size=PAGE)
        return [Incident.model_validate(i) for i in rows]

    def silence(self, *, ends_at: datetime, rule: str | None = None, reason: str = "") -> Silence:
        """No notification of ``rule`` (or of every rule of the project) until ``ends_at``."""
        body = {"rule": rule, "ends_at": ends_at.isoformat(), "reason": reason}
        return Silence.model_validate(self._t.request("POST", self._base("silences"), json=body))

    def silences(self) -> builtins.list[Silence]:
        return [Silence.model_validate(s) for s in self._t.request("GET", self._base("silences"))["items"]]

    def unsilence(self, silence_id: str) -> None:
        self._t.request("DELETE", self._base(f"silences/{segment(silence_id)}"))
