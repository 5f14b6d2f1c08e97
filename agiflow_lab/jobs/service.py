"""Job rules: submission with idempotency keys, admission under concurrency limits, cancel, retry,
and applying the events workers put on the bus.

Ownership moves (claim, hand-back) are written by workers directly, under a row lock, because two
workers must never both believe they own a job. Everything a worker learns while running (progress,
logs, the result) travels back over the bus as ``job-events`` and is applied here, idempotently by
bus message id and guarded by the attempt number, so a late or repeated event never rewrites a newer
attempt's outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, ValidationError

from agiflow_lab.audit import store as audit
from agiflow_lab.bus import outbox
from agiflow_lab.bus.base import Message, Reject
from agiflow_lab.bus.topics import JOBS
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.paging import Cursor, Page, check_limit
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, Forbidden, InvalidInput, NotFound
from agiflow_lab.jobs import store
from agiflow_lab.jobs.events import CellProgress, FinishedEvent, ItemProgress, LogEvent, ProgressEvent, parse_job_event
from agiflow_lab.jobs.models import (
    BUILTIN_PREFIX,
    CONTENTS_PREFIX,
    FINAL_STATES,
    Job,
    JobEvent,
    JobSubmit,
)
from agiflow_lab.jobs.notebooks import builtin_path
from agiflow_lab.jobs.ownership import STALE_AFTER_SECONDS
from agiflow_lab.notifications import builtin as builtin_notifications
from agiflow_lab.projects.service import ProjectService

DISPATCH_LOCK = 0x4A6F_6244_6973  # one dispatcher at a time across API replicas
CURSOR = Cursor[tuple[datetime, UUID]](tuple[AwareDatetime, UUID])  # (created_at, id), newest first


def _job(row: dict[str, Any]) -> Job:
    return Job.model_validate(row)


class JobService:
    def __init__(
        self, db: Database, projects: ProjectService, *, max_running: int = 32, max_running_per_project: int = 8,
        stale_after: float = STALE_AFTER_SECONDS,
    ) -> None:  # fmt: skip
        self.db = db
        self.stale_after = stale_after
        self.projects = projects
        self.max_running = max_running
        self.max_running_per_project = max_running_per_project
        self.dispatch_wanted = asyncio.Event()
        self._rescued: dict[str, float] = {}  # job id → when a rescue message was last sent

    # --- client operations ---------------------------------------------------------------------

    async def submit(
        self, actor: Actor, project: str, body: JobSubmit,
        load_notebook: Callable[[str], Awaitable[dict[str, Any]]] | None = None,
    ) -> tuple[Job, bool]:  # fmt: skip
        """Returns (job, created); a repeated idempotency key returns the first job and False.

        ``load_notebook`` reads a ``contents:`` notebook from the server's files, to be copied into the job.
        Only a signed-in Jupyter user may name one: the files belong to the server, not to a project, so a
        project API key must not run (and so read) whatever notebook lies there."""
        input_notebook = None
        if body.notebook.startswith(BUILTIN_PREFIX):
            builtin_path(body.notebook)  # unknown or internal task: 400 naming the choices
        elif body.notebook.startswith(CONTENTS_PREFIX):
            if actor.kind != "user":
                raise Forbidden(
                    "an API key cannot run notebooks from the server's files; submit it as a signed-in user",
                    {"field": "notebook"},
                )
            if load_notebook is None:
                raise InvalidInput("this server cannot read notebooks from its files", {"field": "notebook"})
            input_notebook = await load_notebook(body.notebook.removeprefix(CONTENTS_PREFIX).lstrip("/"))
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            job, created = await self.submit_in(conn, actor, project_id, body, input_notebook)
        self.dispatch_wanted.set()
        return job, created

    async def submit_in(
        self, conn: Conn, actor: Actor, project_id: int, body: JobSubmit,
        input_notebook: dict[str, Any] | None = None,
    ) -> tuple[Job, bool]:  # fmt: skip
        """Submit inside the caller's transaction, so a job and the record that owns it (an evaluation
        run) are written together or not at all. The caller sets ``dispatch_wanted`` after commit."""
        if body.notebook.startswith(BUILTIN_PREFIX):
            builtin_path(body.notebook, internal=True)  # callers in the platform check what a person may submit
        job_id = await store.insert(
            conn, project_id, body.notebook, input_notebook, body.parameters, body.idempotency_key,
            actor.principal, body.timeout_seconds, body.max_attempts,
        )  # fmt: skip
        if job_id is None:
            assert body.idempotency_key is not None
            existing = await store.by_idempotency_key(conn, project_id, body.idempotency_key)
            assert existing is not None
            if existing["notebook"] != body.notebook or existing["parameters"] != body.parameters:
                raise Conflict(
                    "this idempotency key was used for a different job",
                    {"field": "idempotency_key", "job_id": existing["id"]},
                )
            return _job(existing), False
        await store.add_event(conn, job_id, project_id, "state", {"state": "queued", "by": actor.principal})
        await audit.record(
            conn, project_id=project_id, actor=actor, action="job.submit", resource_type="job",
            resource_id=job_id, after={"notebook": body.notebook, "parameters": body.parameters},
        )  # fmt: skip
        row = await store.get(conn, job_id)
        assert row is not None
        return _job(row), True

    async def get(self, project: str, job_id: str) -> Job:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            row = await store.get(conn, job_id, project_id)
        if row is None:
            raise NotFound(f"job {job_id!r} does not exist in project {project!r}", {"job": job_id})
        return _job(row)

    async def search(
        self, project: str, *, state: str | None, submitted_by: str | None, notebook: str | None,
        cursor: str | None, limit: int,
    ) -> Page[Job]:  # fmt: skip
        check_limit(limit)
        before = CURSOR.decode(cursor)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.search(
                conn, project_id, state=state, submitted_by=submitted_by, notebook=notebook,
                before=before, limit=limit + 1,
            )  # fmt: skip
        next_cursor = CURSOR.next(rows, limit, lambda r: (r["created_at"], UUID(r["id"])))
        return Page[Job](items=[_job(r) for r in rows[:limit]], next_cursor=next_cursor)

    async def cancel(self, actor: Actor, project: str, job_id: str) -> Job:
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            row = await self._locked(conn, job_id, project_id)
            if row["state"] in FINAL_STATES:
                raise Conflict(f"job {job_id} has already {row['state']}", {"state": row["state"]})
            if row["state"] in ("queued", "dispatched"):
                # Not on a kernel yet: cancel here; a worker that later receives it sees a final state.
                await store.set_state(conn, job_id, "cancelled", finished_at="now()", cancel_requested=True)
                await store.add_event(conn, job_id, project_id, "state", {"state": "cancelled", "by": actor.principal})
            else:
                await store.set_state(conn, job_id, row["state"], cancel_requested=True)
                await conn.execute("SELECT pg_notify(%s, %s)", (store.CANCEL_CHANNEL, job_id))
            await audit.record(
                conn, project_id=project_id, actor=actor, action="job.cancel", resource_type="job", resource_id=job_id
            )
            updated = await store.get(conn, job_id)
        self.dispatch_wanted.set()
        assert updated is not None
        return _job(updated)

    async def retry(self, actor: Actor, project: str, job_id: str) -> Job:
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            row = await self._locked(conn, job_id, project_id)
            if row["state"] not in ("failed", "cancelled"):
                raise Conflict(f"only failed or cancelled jobs can be retried; this one is {row['state']}",
                               {"state": row["state"]})  # fmt: skip
            await conn.execute(
                """UPDATE control.jobs SET state = 'queued', cancel_requested = false, error = NULL, result = NULL,
                          finished_at = NULL, events_purged_at = NULL, worker_id = NULL, cells_done = 0,
                          max_attempts = greatest(max_attempts, attempts + 1), updated_at = now()
                    WHERE id = %s""",
                (job_id,),
            )
            await store.add_event(conn, job_id, project_id, "state", {"state": "queued", "by": actor.principal,
                                                                       "retry": True})  # fmt: skip
            await audit.record(
                conn, project_id=project_id, actor=actor, action="job.retry", resource_type="job", resource_id=job_id
            )
            updated = await store.get(conn, job_id)
        self.dispatch_wanted.set()
        assert updated is not None
        return _job(updated)

    async def output(self, project: str, job_id: str) -> dict[str, Any]:
        job = await self.get(project, job_id)
        async with self.db.connection() as conn:
            notebook = await store.output(conn, job.id)
        if notebook is None:
            raise NotFound(f"job {job_id} has no executed notebook yet", {"job": job_id, "state": job.state})
        return notebook

    async def events(self, project: str, job_id: str, *, after: int = 0, limit: int = 500) -> list[JobEvent]:
        job = await self.get(project, job_id)
        async with self.db.connection() as conn:
            rows = await store.events_after(conn, after, job_id=job.id, limit=limit)
        return [JobEvent.model_validate(r) for r in rows]

    async def project_events(self, project: str, *, after: int, limit: int = 500) -> list[JobEvent]:
        """A page of a project's events with ids above ``after``, oldest first: what a live view
        missed, read from the table before it follows the hub. The caller has checked read access."""
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.events_after(conn, after, project_ids=[project_id], limit=limit)
        return [JobEvent.model_validate(r) for r in rows]

    async def latest_event_id(self, project: str) -> int:
        """The newest event id of a project (0 if none): where a view that wants no history starts."""
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            return await store.last_event_id(conn, project_id)

    # --- the backend's side of the pipeline ----------------------------------------------------

    async def dispatch(self) -> int:
        """Put queued jobs on the bus, oldest first, while the global and per-project limits allow."""
        dispatched = 0
        async with self.db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (DISPATCH_LOCK,))
            active = await store.active_counts(conn)
            total = sum(active.values())
            for row in await store.queued_for_dispatch(conn, limit=500):
                if total >= self.max_running:
                    break
                if active.get(row["project_id"], 0) >= self.max_running_per_project:
                    continue
                await store.set_state(conn, row["id"], "dispatched", dispatched_at="now()")
                await outbox.enqueue(conn, JOBS, row["id"], {"job_id": row["id"]})
                active[row["project_id"]] = active.get(row["project_id"], 0) + 1
                total += 1
                dispatched += 1
            await self._rescue_orphans(conn)
        return dispatched

    async def _rescue_orphans(self, conn: Conn) -> None:
        """Send a running job whose worker went silent back to the bus, so a live worker's claim takes
        it over. The dead worker's own message cannot be relied on: Kafka may redeliver it to another
        worker *before* the silence counts as death, and that claim rightly leaves the job alone."""
        # Twice the claim's threshold: a worker that is merely slow to heartbeat (a loaded machine) is not
        # sent extra messages; a dead one is taken over a little later than by a redelivery, not never.
        silent = 2 * self.stale_after
        now = time.monotonic()
        for row in await store.running_on_dead_workers(conn, silent):
            if now - self._rescued.get(row["id"], -silent) < silent:
                continue  # sent recently; give the claim time to happen
            self._rescued[row["id"]] = now
            # A key's next message waits until the one before is settled. For a worker that is merely silent
            # that is a safeguard: if it is alive after all (a stalled machine), it still holds the job's own
            # message, so the rescue waits for it instead of running the notebook a second time. A stopped
            # worker runs nothing, and its lease on that message may have long to run (30 s on Postgres), so
            # its jobs' rescues are keyed apart and claimed at once.
            key = f"{row['id']}:rescue" if row["stopped"] else row["id"]
            await outbox.enqueue(conn, JOBS, key, {"job_id": row["id"], "rescue": True})
        for job_id, at in list(self._rescued.items()):
            if now - at > 10 * silent:
                del self._rescued[job_id]

    async def worker_exited(self, worker_id: str) -> None:
        """A supervisor saw this worker's process end: mark it stopped and wake the dispatcher, whose
        rescue sends its running jobs back to the bus now instead of after the heartbeat threshold."""
        async with self.db.transaction() as conn:
            await builtin_notifications.worker_lost(conn, worker_id)
            await store.worker_stopped(conn, worker_id)
        self.dispatch_wanted.set()

    async def apply_event(self, message: Message) -> None:
        """Apply one ``job-events`` message from a worker; safe to call again with the same message.

        A body that is not a job event can never be applied: it is rejected (dead-lettered, where an
        operator can read it) rather than retried, and the consumer goes on with the next message."""
        try:
            event = parse_job_event(message.payload)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                                 for e in exc.errors(include_url=False, include_input=False))  # fmt: skip
            raise Reject(f"not a job event: {problems}") from None
        job_id, attempt = event.job_id, event.attempt
        async with self.db.transaction() as conn:
            row = await store.get(conn, job_id, lock=True)
            if row is None:
                return
            current = row["attempts"] == attempt and row["state"] == "running"

            async def record(type_: str, data: dict[str, Any]) -> bool:
                """The event row (for live views); False if this bus message was applied before."""
                added = await store.add_event(conn, job_id, row["project_id"], type_, data, attempt=attempt,
                                              message_id=message.id)  # fmt: skip
                return added is not None

            match event:
                case ProgressEvent(data=CellProgress() as progress):
                    if await record("progress", progress.model_dump(mode="json")) and current:
                        await store.progress(conn, job_id, attempt, progress.done, progress.total)
                case ProgressEvent(data=ItemProgress() as progress):  # an evaluation's items: shown, not cells
                    await record("progress", progress.model_dump(mode="json"))
                case LogEvent(data=output):
                    await record("log", output.model_dump(mode="json"))
                case FinishedEvent(data=done):
                    state = {"succeeded": "succeeded", "cancelled": "cancelled"}.get(done.status, "failed")
                    error = None if done.error is None else done.error.model_dump(mode="json")
                    if not current:
                        # An attempt handed back (its worker went silent, or Kafka redelivered its message) may
                        # still finish. Its outcome is not the job's: the job has one final state, from its
                        # current attempt, so this one is told in the log rather than as a second state event.
                        note = f"attempt {attempt} finished ({done.status}) after it had been superseded; ignored\n"
                        await record("log", {"stream": "stderr", "text": note})
                    elif await record("state", {"state": state, "status": done.status, "error": error}):
                        await store.set_state(
                            conn, job_id, state, finished_at="now()", error=error, result=done.result,
                            cells_done=row["cells_done"] if done.cells_done is None else done.cells_done,
                        )  # fmt: skip
                        if state == "failed":
                            await builtin_notifications.job_failed(conn, row, error)
                        elif state == "succeeded":
                            await builtin_notifications.run_succeeded(conn, row)
        if isinstance(event, FinishedEvent):
            self.dispatch_wanted.set()

    async def _locked(self, conn: Any, job_id: str, project_id: int) -> dict[str, Any]:
        row = await store.get(conn, job_id, project_id, lock=True)
        if row is None:
            raise NotFound(f"job {job_id!r} does not exist", {"job": job_id})
        return row
