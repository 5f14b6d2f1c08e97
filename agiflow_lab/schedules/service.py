"""Schedule rules: what a valid schedule is, and firing its ticks exactly once.

Firing is a function of a given ``now`` (``fire_due(now)``), so what a pass does after any downtime can be
checked without waiting for it; the ``Scheduler`` role calls it with the clock. Each schedule's pass is one
transaction holding the schedule's row: the firing rows (unique per schedule and tick) and the jobs or runs
they start (idempotency key ``schedule:<id>:<tick>``) commit together or not at all. Whichever process runs a
pass, a tick fires once: the advisory lock that elects one scheduler only saves the others the work.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, ValidationError

from agiflow_lab.audit import store as audit
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.paging import Cursor, KeyInt, Page, check_limit
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import AgiflowError, Conflict, Forbidden, InvalidInput, NotFound, ValidationFailed
from agiflow_lab.evals.models import RunSubmit
from agiflow_lab.evals.service import EvalService
from agiflow_lab.jobs.models import BUILTIN_PREFIX, CONTENTS_PREFIX, JobSubmit
from agiflow_lab.jobs.notebooks import builtin_path
from agiflow_lab.jobs.service import JobService
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.schedules import store
from agiflow_lab.schedules.models import NEXT_FIRE_TIMES, Firing, Schedule, ScheduleCreate, ScheduleFields
from agiflow_lab.schedules.timing import Timing, plan

log = logging.getLogger(__name__)

CURSOR = Cursor[tuple[datetime, UUID]](tuple[AwareDatetime, UUID])  # (created_at, id), newest first
FIRING_CURSOR = Cursor[int](KeyInt)  # the last firing's id, newest first
DEFAULTS: dict[str, Any] = {"description": "", "timezone": "UTC", "missed": "run_once", "max_catch_up": 10,
                            "misfire_grace_seconds": 60, "overlap": "allow", "paused": False}  # fmt: skip
TIMING_FIELDS = {"cron", "timezone", "interval_seconds", "start_at"}
DUE_BATCH = 100  # schedules per pass; a pass that finds this many runs again at once
QUEUE_POLL = 2.0  # how often a queued firing's predecessor is looked at (its end is not announced here)
MAX_IDLE = 30.0  # the longest the scheduler sleeps without looking (a safety net: changes are NOTIFY'd)

LoadNotebook = Callable[[str], Awaitable[dict[str, Any]]]


def _timing(row: dict[str, Any]) -> Timing:
    return Timing(row.get("cron"), row["timezone"], row.get("interval_seconds"), row["anchor"])


def _firing(row: dict[str, Any]) -> Firing:
    return Firing.model_validate(row)


def _schedule(row: dict[str, Any], last: dict[str, Any] | None, now: datetime) -> Schedule:
    body = row["body"]
    upcoming = [] if row["next_fire_at"] is None else _timing(row).upcoming(row["next_fire_at"], NEXT_FIRE_TIMES)
    return Schedule(
        id=row["id"], project=row["project"], name=row["name"], description=row["description"], cron=row["cron"],
        timezone=row["timezone"], interval_seconds=row["interval_seconds"], start_at=row["start_at"],
        target=row["target"], job=JobSubmit.model_validate(body) if row["target"] == "job" else None,
        eval=RunSubmit.model_validate(body) if row["target"] == "eval" else None, missed=row["missed"],
        max_catch_up=row["max_catch_up"], misfire_grace_seconds=row["misfire_grace_seconds"],
        overlap=row["overlap"], pass_rate_gate=row["pass_rate_gate"], paused=row["paused"], next_fire_at=row["next_fire_at"], next_fire_times=upcoming,
        missed_ticks=row["missed_ticks"], last_firing=None if last is None else _firing(last),
        created_by=row["created_by"], created_at=row["created_at"], updated_at=row["updated_at"],
    )  # fmt: skip


class ScheduleService:
    def __init__(self, db: Database, projects: ProjectService, jobs: JobService, evals: EvalService) -> None:
        self.db = db
        self.projects = projects
        self.jobs = jobs
        self.evals = evals

    # --- client operations ---------------------------------------------------------------------

    async def create(
        self, actor: Actor, project: str, body: ScheduleCreate, load_notebook: LoadNotebook | None = None,
        *, now: datetime | None = None,
    ) -> Schedule:  # fmt: skip
        now = now or datetime.now(UTC)
        project_id = await self.projects.resolve_id(project)
        given = body.model_dump(exclude_unset=True, exclude={"name"})
        fields = {**DEFAULTS, **{k: v for k, v in given.items() if v is not None}, "name": body.name}
        fields = await self._settle(actor, project, fields, load_notebook, now, timing_changed=True, retime=True,
                                    retarget=True)  # fmt: skip
        async with self.db.transaction() as conn:
            schedule_id = await store.insert(conn, project_id, actor.principal, fields)
            if schedule_id is None:
                raise Conflict(f"project {project!r} has a schedule named {body.name!r} already", {"field": "name"})
            await audit.record(
                conn, project_id=project_id, actor=actor, action="schedule.create", resource_type="schedule",
                resource_id=schedule_id, after=_audited(fields),
            )  # fmt: skip
            await store.notify(conn)
            row = await store.get(conn, schedule_id)
        assert row is not None
        return _schedule(row, None, now)

    async def get(self, project: str, name: str) -> Schedule:
        async with self.db.connection() as conn:
            row = await self._require(conn, project, name)
            last = await store.last_firings(conn, [row["id"]])
        return _schedule(row, last.get(row["id"]), datetime.now(UTC))

    async def search(
        self, project: str, *, paused: bool | None, target: str | None, cursor: str | None, limit: int
    ) -> Page[Schedule]:
        check_limit(limit)
        before = CURSOR.decode(cursor)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.search(conn, project_id, paused=paused, target=target, before=before, limit=limit + 1)
            last = await store.last_firings(conn, [r["id"] for r in rows[:limit]])
        now = datetime.now(UTC)
        return Page[Schedule](
            items=[_schedule(r, last.get(r["id"]), now) for r in rows[:limit]],
            next_cursor=CURSOR.next(rows, limit, lambda r: (r["created_at"], UUID(r["id"]))),
        )

    async def update(
        self, actor: Actor, project: str, name: str, body: ScheduleFields, load_notebook: LoadNotebook | None = None,
        *, now: datetime | None = None,
    ) -> Schedule:  # fmt: skip
        now = now or datetime.now(UTC)
        changes = body.model_dump(exclude_unset=True)
        for field in ("description", "timezone", "missed", "max_catch_up", "misfire_grace_seconds", "overlap",
                      "paused"):  # fmt: skip
            if field in changes and changes[field] is None:
                raise ValidationFailed.of(field, "may not be null")
        async with self.db.transaction() as conn:
            row = await self._require(conn, project, name, lock=True)
            current = {c: row[c] for c in store.COLUMNS}
            retarget = "job" in changes or "eval" in changes  # a new target replaces the old one, checked anew
            retime = bool(TIMING_FIELDS & changes.keys())
            resumed = changes.get("paused") is False and row["paused"]
            fields = await self._settle(actor, project, {**current, **changes}, load_notebook, now,
                                        timing_changed=retime or resumed, retime=retime, retarget=retarget)  # fmt: skip
            await store.update(conn, row["id"], fields)
            action = "schedule.update"
            if changes.keys() == {"paused"}:
                action = "schedule.pause" if changes["paused"] else "schedule.resume"
            await audit.record(
                conn, project_id=row["project_id"], actor=actor, action=action, resource_type="schedule",
                resource_id=row["id"], before=_audited(current), after=body.model_dump(exclude_unset=True, mode="json"),
            )  # fmt: skip
            await store.notify(conn)
            updated = await store.get(conn, row["id"])
            last = await store.last_firings(conn, [row["id"]])
        assert updated is not None
        return _schedule(updated, last.get(row["id"]), now)

    async def pause(self, actor: Actor, project: str, name: str) -> Schedule:
        return await self.update(actor, project, name, ScheduleFields(paused=True))

    async def resume(self, actor: Actor, project: str, name: str, *, now: datetime | None = None) -> Schedule:
        """Ticks that fell while paused are not missed ones: the schedule goes on from the next tick."""
        return await self.update(actor, project, name, ScheduleFields(paused=False), now=now)

    async def delete(self, actor: Actor, project: str, name: str) -> None:
        """The schedule and its firing history go; the jobs and runs it started stay."""
        async with self.db.transaction() as conn:
            row = await self._require(conn, project, name, lock=True)
            await store.delete(conn, row["id"])
            await audit.record(
                conn, project_id=row["project_id"], actor=actor, action="schedule.delete", resource_type="schedule",
                resource_id=row["id"], before={"name": row["name"]},
            )  # fmt: skip
            await store.notify(conn)

    async def run_now(self, actor: Actor, project: str, name: str, *, now: datetime | None = None) -> Firing:
        """Fire once, now, whatever the overlap policy (a person asked for it); errors are the caller's."""
        now = now or datetime.now(UTC)
        async with self.db.transaction() as conn:
            row = await self._require(conn, project, name, lock=True)
            firing_id = await store.insert_firing(conn, row["id"], row["project_id"], now, manual=True,
                                                  outcome="started")  # fmt: skip
            if firing_id is None:
                raise Conflict("this schedule was run at this very instant already", {"field": "name"})
            await self._start(conn, row, firing_id, now, manual=True, actor=actor)
            await audit.record(
                conn, project_id=row["project_id"], actor=actor, action="schedule.run", resource_type="schedule",
                resource_id=row["id"], after={"firing": firing_id},
            )  # fmt: skip
            found = await store.firings(conn, row["id"], outcome=None, before=firing_id + 1, limit=1)
        self.jobs.dispatch_wanted.set()
        return _firing(found[0])

    async def firings(
        self, project: str, name: str, *, outcome: str | None, cursor: str | None, limit: int
    ) -> Page[Firing]:
        check_limit(limit)
        before = FIRING_CURSOR.decode(cursor)
        async with self.db.connection() as conn:
            row = await self._require(conn, project, name)
            rows = await store.firings(conn, row["id"], outcome=outcome, before=before, limit=limit + 1)
        return Page[Firing](items=[_firing(r) for r in rows[:limit]],
                            next_cursor=FIRING_CURSOR.next(rows, limit, lambda r: int(r["id"])))  # fmt: skip

    # --- the scheduler's side ------------------------------------------------------------------

    async def fire_due(self, now: datetime | None = None) -> int:
        """Handle every schedule due at ``now`` (default: the clock); returns the firings written."""
        now = now or datetime.now(UTC)
        async with self.db.connection() as conn:
            due = await store.due(conn, now, DUE_BATCH)
        written = 0
        for schedule_id in due:
            written += await self.fire_schedule(schedule_id, now)
        if written:
            self.jobs.dispatch_wanted.set()
        return written

    async def fire_schedule(self, schedule_id: str, now: datetime) -> int:
        """One schedule's pass, in one transaction; a schedule another pass holds right now is left to it."""
        written = 0
        async with self.db.transaction() as conn:
            row = await store.get(conn, schedule_id, lock=True, skip_locked=True)
            if row is None:
                return 0
            if row["paused"]:
                return 0
            queued = await store.queued_firing(conn, schedule_id)
            if queued is not None and await store.running_firing(conn, schedule_id) is None:
                await self._start(conn, row, int(queued["id"]), queued["tick"], manual=False)
                written += 1
            if row["next_fire_at"] is None or row["next_fire_at"] > now:
                return written
            due = plan(_timing(row), row["next_fire_at"], now, grace=row["misfire_grace_seconds"],
                       missed=row["missed"], max_catch_up=row["max_catch_up"])  # fmt: skip
            for tick in due.fire:
                written += await self._fire_tick(conn, row, tick)
            await store.add_missed(conn, schedule_id, due.missed, due.next_fire_at)
            if due.missed:
                log.info("schedule %s (%s): %d missed tick(s) not fired (missed=%s)", row["name"], row["project"],
                         due.missed, row["missed"])  # fmt: skip
        return written

    async def seconds_until_due(self, now: datetime | None = None) -> float:
        """How long the scheduler may sleep: until the earliest tick, and briefly while a firing is queued."""
        now = now or datetime.now(UTC)
        async with self.db.connection() as conn:
            at, queued = await store.next_due(conn)
        wait = MAX_IDLE if at is None else (at - now).total_seconds()
        if queued:
            wait = min(wait, QUEUE_POLL)
        return max(0.0, min(MAX_IDLE, wait))

    async def _fire_tick(self, conn: Conn, row: dict[str, Any], tick: datetime) -> int:
        schedule_id, project_id = row["id"], row["project_id"]
        if row["overlap"] != "allow" and await store.running_firing(conn, schedule_id) is not None:
            if row["overlap"] == "queue" and await store.queued_firing(conn, schedule_id) is None:
                outcome, reason = "queued", "waits for the previous firing to finish"
            else:
                outcome = "skipped"
                reason = ("the previous firing is still running" if row["overlap"] == "skip"
                          else "a firing is queued already")  # fmt: skip
            added = await store.insert_firing(conn, schedule_id, project_id, tick, manual=False, outcome=outcome,
                                              reason=reason)  # fmt: skip
            return int(added is not None)
        firing_id = await store.insert_firing(conn, schedule_id, project_id, tick, manual=False, outcome="started")
        if firing_id is None:
            return 0  # fired before (by another pass): exactly once
        await self._start(conn, row, firing_id, tick, manual=False)
        return 1

    async def _start(
        self, conn: Conn, row: dict[str, Any], firing_id: int, tick: datetime, *, manual: bool,
        actor: Actor | None = None,
    ) -> None:  # fmt: skip
        """Submit the firing's job or run in the caller's transaction. A tick that cannot start (its dataset was
        deleted, say) is recorded as failed and the schedule goes on; a manual run's error is raised."""
        key = f"schedule:{row['id']}:{'manual:' if manual else ''}{tick.astimezone(UTC).isoformat()}"
        who = actor or Actor(f"schedule:{row['id']}", "system")
        try:
            async with conn.transaction():  # a savepoint: a failed submit leaves the firing row
                job_id, run_id = await self._submit(conn, who, row, key)
        except (AgiflowError, ValidationError) as exc:
            if manual:
                raise
            reason = exc.message if isinstance(exc, AgiflowError) else f"the stored target is invalid: {exc}"
            log.warning("schedule %s (%s) could not fire %s: %s", row["name"], row["project"], tick, reason)
            await store.set_firing(conn, firing_id, "failed", reason=reason[:2000])
            return
        await store.set_firing(conn, firing_id, "started", job_id=job_id, run_id=run_id)

    async def _submit(self, conn: Conn, actor: Actor, row: dict[str, Any], key: str) -> tuple[str, str | None]:
        if row["target"] == "job":
            job_body = JobSubmit.model_validate({**row["body"], "idempotency_key": key})
            job, _ = await self.jobs.submit_in(conn, actor, row["project_id"], job_body, row["input_notebook"])
            return job.id, None
        run_body = RunSubmit.model_validate({**row["body"], "idempotency_key": key})
        pinned = await self.evals.pin(row["project"], run_body)  # the label's version, the latest dataset: now
        run, _ = await self.evals.submit_in(conn, actor, pinned)
        return run.job_id, run.id

    # --- rules -----------------------------------------------------------------------------------

    async def _settle(
        self, actor: Actor, project: str, fields: dict[str, Any], load_notebook: LoadNotebook | None, now: datetime,
        *, timing_changed: bool, retime: bool, retarget: bool,
    ) -> dict[str, Any]:  # fmt: skip
        """Check the cross-field rules on a whole schedule and derive the stored columns. A target is checked
        when it is set (an edit of anything else must work even if, say, the run's dataset is gone since)."""
        cron, interval = fields.get("cron"), fields.get("interval_seconds")
        if (cron is None) == (interval is None):
            raise ValidationFailed.of("cron", "give either cron or interval_seconds (exactly one)")
        job, run = fields.pop("job", None), fields.pop("eval", None)
        if retarget and (job is None) == (run is None):
            raise ValidationFailed.of(
                "job", "give either job (a notebook job) or eval (an evaluation run) as the target"
            )
        if not retarget:
            pass  # target, body and input_notebook stay as stored
        elif job is not None:
            fields["target"], fields["body"] = "job", JobSubmit.model_validate(job).model_dump(mode="json")
            fields["input_notebook"] = await self._notebook(actor, fields["body"]["notebook"], load_notebook)
        else:
            submit = RunSubmit.model_validate(run)
            await self.evals.pin(project, submit)  # every reference must resolve today, and will be again per tick
            fields["target"], fields["body"], fields["input_notebook"] = "eval", submit.model_dump(mode="json"), None
        if retime or fields.get("anchor") is None:  # an interval counts from its start (default: one from now)
            start_at = fields.get("start_at")
            fields["anchor"] = start_at or (now + timedelta(seconds=interval) if interval is not None else now)
        if fields.get("pass_rate_gate") is not None and fields.get("target") != "eval":
            raise ValidationFailed.of("pass_rate_gate", "a pass-rate gate needs an evaluation run as the target (eval)")
        if fields.get("paused"):
            fields["next_fire_at"] = None
        elif timing_changed or fields.get("next_fire_at") is None:
            fields["next_fire_at"] = _timing(fields).at_or_after(now)
        return {c: fields.get(c) for c in store.COLUMNS}

    async def _notebook(self, actor: Actor, notebook: str, load_notebook: LoadNotebook | None) -> dict[str, Any] | None:
        """A contents notebook is copied when the schedule is saved (the scheduler has no user's files to
        read at 3 a.m.); like a job, only a signed-in user may name one."""
        if notebook.startswith(BUILTIN_PREFIX):
            builtin_path(notebook)  # unknown or internal task: 400 naming the choices
            return None
        assert notebook.startswith(CONTENTS_PREFIX)
        if actor.kind != "user":
            raise Forbidden("an API key cannot schedule notebooks from the server's files", {"field": "job.notebook"})
        if load_notebook is None:
            raise InvalidInput("this server cannot read notebooks from its files", {"field": "job.notebook"})
        return await load_notebook(notebook.removeprefix(CONTENTS_PREFIX).lstrip("/"))

    async def _require(self, conn: Conn, project: str, name: str, *, lock: bool = False) -> dict[str, Any]:
        project_id = await self.projects.resolve_id(project)
        row = await store.by_name(conn, project_id, name)
        if row is not None and lock:
            row = await store.get(conn, row["id"], lock=True)
        if row is None:
            raise NotFound(f"schedule {name!r} does not exist in project {project!r}", {"schedule": name})
        return row


def _audited(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items() if k != "input_notebook"}
