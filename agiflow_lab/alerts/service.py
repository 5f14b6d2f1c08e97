"""Alert rules: what a valid rule is, and evaluating rules into incidents and their notifications.

Evaluation is a function of a given ``now`` (``evaluate(now)``), so the state machine can be driven through
``for`` durations and windows in tests without waiting; the ``AlertEvaluator`` role calls it with the clock.
Each rule's step is one transaction holding the rule's row: its new state, the incident it opens or closes,
and the notification messages (outbox) of that change commit together. A firing rule re-evaluated changes
nothing, so one incident is one "firing" and one "resolved" notification, whoever evaluates and however
often. A silence at the time an incident opens holds both of its notifications back (``notified``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from agiflow_lab.alerts import store
from agiflow_lab.alerts.evaluate import breaches, step
from agiflow_lab.alerts.metrics import MetricReader
from agiflow_lab.alerts.models import Incident, Rule, RuleCreate, RuleUpdate, Silence, SilenceCreate
from agiflow_lab.audit import store as audit
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.paging import Cursor, KeyInt, Page, check_limit
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, NotFound
from agiflow_lab.notifications.announce import announce, event
from agiflow_lab.projects.service import ProjectService

log = logging.getLogger(__name__)

INCIDENT_CURSOR = Cursor[int](KeyInt)  # the last incident's id, newest first


def _rule(row: dict[str, Any]) -> Rule:
    return Rule.model_validate(row)


def _describe(row: dict[str, Any], value: float | None) -> str:
    what = row["metric"] + (f"[{row['score_name']}]" if row["score_name"] else "")
    shown = "no data" if value is None else f"{value:g}"
    return f"{what} = {shown} (rule: {row['comparison']} {row['threshold']:g} over {row['window_seconds']}s)"


class AlertService:
    def __init__(self, db: Database, projects: ProjectService, reader: MetricReader) -> None:
        self.db = db
        self.projects = projects
        self.reader = reader

    # --- rules ---------------------------------------------------------------------------------

    async def create_rule(self, actor: Actor, project: str, body: RuleCreate) -> Rule:
        project_id = await self.projects.resolve_id(project)
        fields = body.model_dump()
        async with self.db.transaction() as conn:
            rule_id = await store.insert_rule(conn, project_id, actor.principal, fields)
            if rule_id is None:
                raise Conflict(f"project {project!r} has an alert rule named {body.name!r} already", {"field": "name"})
            await audit.record(conn, project_id=project_id, actor=actor, action="alert_rule.create",
                               resource_type="alert_rule", resource_id=rule_id, after=fields)  # fmt: skip
            await store.notify(conn)
            row = await store.rule(conn, rule_id)
        assert row is not None
        return _rule(row)

    async def _require(self, conn: Conn, project: str, name: str, *, lock: bool = False) -> dict[str, Any]:
        row = await store.rule_by_name(conn, await self.projects.resolve_id(project), name, lock=lock)
        if row is None:
            raise NotFound(f"project {project!r} has no alert rule {name!r}", {"field": "name"})
        return row

    async def rules(self, project: str) -> list[Rule]:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            return [_rule(r) for r in await store.rules(conn, project_id)]

    async def rule(self, project: str, name: str) -> Rule:
        async with self.db.connection() as conn:
            return _rule(await self._require(conn, project, name))

    async def update_rule(self, actor: Actor, project: str, name: str, body: RuleUpdate) -> Rule:
        """A changed rule keeps its state; the next evaluation applies the new threshold or window."""
        changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
        async with self.db.transaction() as conn:
            row = await self._require(conn, project, name, lock=True)
            await store.update_rule(conn, row["id"], changes)
            await audit.record(conn, project_id=row["project_id"], actor=actor, action="alert_rule.update",
                               resource_type="alert_rule", resource_id=row["id"], after=changes)  # fmt: skip
            await store.notify(conn)
            updated = await store.rule(conn, row["id"])
        assert updated is not None
        return _rule(updated)

    async def delete_rule(self, actor: Actor, project: str, name: str) -> None:
        """The rule and its incident history go (an open incident ends without a "resolved" notification)."""
        async with self.db.transaction() as conn:
            row = await self._require(conn, project, name, lock=True)
            await store.delete_rule(conn, row["id"])
            await audit.record(conn, project_id=row["project_id"], actor=actor, action="alert_rule.delete",
                               resource_type="alert_rule", resource_id=row["id"], before={"name": name})  # fmt: skip

    async def incidents(self, project: str, *, rule: str | None, cursor: str | None, limit: int) -> Page[Incident]:
        check_limit(limit)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rule_id = None if rule is None else (await self._require(conn, project, rule))["id"]
            rows = await store.incidents(conn, project_id, rule_id, before=INCIDENT_CURSOR.decode(cursor),
                                         limit=limit + 1)  # fmt: skip
        return Page[Incident](
            items=[Incident.model_validate(r) for r in rows[:limit]],
            next_cursor=INCIDENT_CURSOR.next(rows, limit, lambda r: int(r["id"])),
        )

    # --- silences ------------------------------------------------------------------------------

    async def create_silence(self, actor: Actor, project: str, body: SilenceCreate) -> Silence:
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            rule_id = None
            if body.rule is not None:
                found = await store.rule_by_name(conn, project_id, body.rule)
                if found is None:
                    raise NotFound(f"project {project!r} has no alert rule {body.rule!r}", {"field": "rule"})
                rule_id = found["id"]
            silence_id = await store.insert_silence(conn, project_id, rule_id, body.ends_at, body.reason,
                                                    actor.principal)  # fmt: skip
            await audit.record(conn, project_id=project_id, actor=actor, action="alert_silence.create",
                               resource_type="alert_silence", resource_id=silence_id,
                               after=body.model_dump(mode="json"))  # fmt: skip
            row = await store.silence(conn, project_id, silence_id)
        assert row is not None
        return Silence.model_validate(row)

    async def silences(self, project: str) -> list[Silence]:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            return [Silence.model_validate(r) for r in await store.silences(conn, project_id)]

    async def delete_silence(self, actor: Actor, project: str, silence_id: str) -> None:
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            if await store.silence(conn, project_id, silence_id) is None:
                raise NotFound(f"no silence {silence_id!r} in project {project!r}", {"field": "silence_id"})
            await store.delete_silence(conn, silence_id)
            await audit.record(conn, project_id=project_id, actor=actor, action="alert_silence.delete",
                               resource_type="alert_silence", resource_id=silence_id)  # fmt: skip

    # --- evaluation ----------------------------------------------------------------------------

    async def evaluate(self, now: datetime | None = None) -> int:
        """Every enabled rule once, at ``now``; how many changed state. A rule whose metric cannot be read
        is logged and left as it was (the others go on)."""
        now = now or datetime.now(UTC)
        async with self.db.connection() as conn:
            rows = await store.enabled_rules(conn)
        changed = 0
        for row in rows:
            try:
                changed += int(await self.evaluate_rule(row, now))
            except Exception:
                log.warning("alert rule %s (%s) could not be evaluated", row["name"], row["project"], exc_info=True)
        return changed

    async def evaluate_rule(self, row: dict[str, Any], now: datetime) -> bool:
        value = await self.reader.value(row, now)
        async with self.db.transaction() as conn:
            rule = await store.rule(conn, row["id"], lock=True)
            if rule is None or not rule["enabled"]:
                return False
            breach = breaches(value, rule["comparison"], rule["threshold"])
            s = step(rule["state"], rule["pending_since"], breach, now, rule["for_seconds"])
            incident_id = rule["incident_id"]
            project_id, upward = rule["project_id"], rule["comparison"] in (">", ">=")
            data = {"rule": rule["name"], "metric": rule["metric"], "value": value, "threshold": rule["threshold"],
                    "comparison": rule["comparison"], "window_seconds": rule["window_seconds"]}  # fmt: skip
            if s.change == "fire":
                notified = not await store.silenced(conn, project_id, rule["id"], now)
                incident_id = await store.open_incident(conn, rule["id"], project_id, now, value, notified=notified)
                if notified:
                    await announce(conn, project_id, event(
                        "alert.firing", "critical", rule["project"], f"Alert {rule['name']} is firing",
                        _describe(rule, value), data={**data, "incident": incident_id}, at=now,
                    ))  # fmt: skip
            elif s.change == "resolve" and incident_id is not None:
                closed = await store.close_incident(conn, incident_id, now, value)
                if closed is not None and closed["notified"]:
                    await announce(conn, project_id, event(
                        "alert.resolved", "info", rule["project"], f"Alert {rule['name']} is resolved",
                        _describe(rule, value), data={**data, "incident": incident_id,
                                                      "started_at": closed["started_at"].isoformat()}, at=now,
                    ))  # fmt: skip
                incident_id = None
            elif s.state == "firing" and incident_id is not None and value is not None:
                await store.track_peak(conn, incident_id, value, upward)
            await store.save_state(conn, rule["id"], s.state, s.pending_since, incident_id, value, now)
        return bool(s.state != rule["state"])
