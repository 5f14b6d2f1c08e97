"""SQL for jobs, their events, outputs and the worker registry. Parameters are always bound."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb

from agiflow_lab.db.database import Conn

EVENTS_CHANNEL = "agiflow_job_events"
DISPATCH_CHANNEL = "agiflow_dispatch"
CANCEL_CHANNEL = "agiflow_cancel"

JOB = """
    SELECT j.id::text AS id, p.slug AS project, j.project_id, j.notebook, j.parameters, j.state, j.idempotency_key,
           j.submitted_by, j.worker_id, j.attempts, j.max_attempts, j.timeout_seconds, j.cells_done, j.cells_total,
           j.error, j.result, j.cancel_requested, j.created_at, j.dispatched_at, j.started_at, j.finished_at,
           j.updated_at, r.id::text AS run_id, r.name AS run_name
      FROM control.jobs j JOIN control.projects p ON p.id = j.project_id
      LEFT JOIN control.eval_runs r ON r.job_id = j.id"""

EVENT = """
    SELECT e.id, e.job_id::text AS job_id, p.slug AS project, e.attempt, e.type, e.data, e.at
      FROM control.job_events e JOIN control.projects p ON p.id = e.project_id"""


async def insert(
    conn: Conn, project_id: int, notebook: str, input_notebook: dict[str, Any] | None, parameters: dict[str, Any],
    idempotency_key: str | None, submitted_by: str, timeout_seconds: float, max_attempts: int,
) -> str | None:  # fmt: skip
    """Returns the new job's id, or None when the idempotency key was used already."""
    cur = await conn.execute(
        """INSERT INTO control.jobs (id, project_id, notebook, input_notebook, parameters, state, idempotency_key,
                                     submitted_by, timeout_seconds, max_attempts)
           VALUES (%s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s)
           ON CONFLICT (project_id, idempotency_key) DO NOTHING RETURNING id::text""",
        (uuid.uuid4(), project_id, notebook, None if input_notebook is None else Jsonb(input_notebook),
         Jsonb(parameters), idempotency_key, submitted_by, timeout_seconds, max_attempts),
    )  # fmt: skip
    row = await cur.fetchone()
    return None if row is None else str(row["id"])


async def by_idempotency_key(conn: Conn, project_id: int, key: str) -> dict[str, Any] | None:
    cur = await conn.execute(JOB + " WHERE j.project_id = %s AND j.idempotency_key = %s", (project_id, key))
    return await cur.fetchone()


async def get(conn: Conn, job_id: str, project_id: int | None = None, *, lock: bool = False) -> dict[str, Any] | None:
    try:
        uuid.UUID(job_id)
    except ValueError:
        return None
    query = JOB + " WHERE j.id = %s AND (%s::bigint IS NULL OR j.project_id = %s)"
    if lock:
        query += " FOR UPDATE OF j"
    cur = await conn.execute(query, (job_id, project_id, project_id))
    return await cur.fetchone()


async def input_notebook(conn: Conn, job_id: str) -> dict[str, Any] | None:
    cur = await conn.execute("SELECT input_notebook FROM control.jobs WHERE id = %s", (job_id,))
    row = await cur.fetchone()
    return None if row is None else row["input_notebook"]


async def search(
    conn: Conn, project_id: int, *, state: str | None, submitted_by: str | None, notebook: str | None,
    before: tuple[datetime, uuid.UUID] | None, limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    before_at, before_id = before if before else (None, None)
    cur = await conn.execute(
        JOB
        + """ WHERE j.project_id = %s
                AND (%s::text IS NULL OR j.state = %s)
                AND (%s::text IS NULL OR j.submitted_by = %s)
                AND (%s::text IS NULL OR j.notebook = %s)
                AND (%s::timestamptz IS NULL OR (j.created_at, j.id) < (%s::timestamptz, %s::uuid))
              ORDER BY j.created_at DESC, j.id DESC LIMIT %s""",
        (project_id, state, state, submitted_by, submitted_by, notebook, notebook, before_at, before_at, before_id,
         limit),
    )  # fmt: skip
    return await cur.fetchall()


async def add_event(
    conn: Conn, job_id: str, project_id: int, type_: str, data: dict[str, Any], *, attempt: int = 0,
    message_id: str | None = None,
) -> int | None:  # fmt: skip
    """Record an event and wake every live view; None if this bus message was recorded before."""
    cur = await conn.execute(
        """WITH row AS (
               INSERT INTO control.job_events (job_id, project_id, message_id, attempt, type, data)
               VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING RETURNING id)
           SELECT id, pg_notify(%s, id::text) FROM row""",
        (job_id, project_id, message_id, attempt, type_, Jsonb(data), EVENTS_CHANNEL),
    )
    row = await cur.fetchone()
    return None if row is None else int(row["id"])


async def events_after(
    conn: Conn, after_id: int, *, project_ids: list[int] | None = None, job_id: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        EVENT
        + """ WHERE e.id > %s AND (%s::bigint[] IS NULL OR e.project_id = ANY(%s))
                AND (%s::uuid IS NULL OR e.job_id = %s::uuid)
              ORDER BY e.id LIMIT %s""",
        (after_id, project_ids, project_ids, job_id, job_id, limit),
    )
    return await cur.fetchall()


async def last_event_id(conn: Conn, project_id: int | None = None) -> int:
    """The newest event id, of the deployment or of one project (0 if there is none)."""
    if project_id is None:
        cur = await conn.execute("SELECT coalesce(max(id), 0) AS id FROM control.job_events")
    else:  # a backward scan of job_events_by_project
        cur = await conn.execute(
            "SELECT coalesce(max(id), 0) AS id FROM control.job_events WHERE project_id = %s", (project_id,)
        )
    row = await cur.fetchone()
    return int(row["id"]) if row else 0


async def set_state(conn: Conn, job_id: str, state: str, **fields: Any) -> None:
    """Move a job to ``state``, setting timing columns the caller names (values bound, names fixed)."""
    allowed = {"dispatched_at", "started_at", "finished_at", "worker_id", "error", "result", "cancel_requested",
               "cells_done", "cells_total", "attempts"}  # fmt: skip
    assignments: list[str] = ["state = %s", "updated_at = now()"]
    values: list[Any] = [state]
    for name, value in fields.items():
        if name not in allowed:
            raise ValueError(name)
        if value == "now()":
            assignments.append(f"{name} = now()")
        else:
            assignments.append(f"{name} = %s")
            values.append(Jsonb(value) if name in ("error", "result") and value is not None else value)
    await conn.execute(f"UPDATE control.jobs SET {', '.join(assignments)} WHERE id = %s", (*values, job_id))


async def queued_for_dispatch(conn: Conn, limit: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT id::text AS id, project_id FROM control.jobs WHERE state = 'queued'
            ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT %s""",
        (limit,),
    )
    return await cur.fetchall()


async def active_counts(conn: Conn) -> dict[int, int]:
    cur = await conn.execute(
        """SELECT project_id, count(*) AS n FROM control.jobs
            WHERE state IN ('dispatched', 'running', 'retrying') GROUP BY project_id"""
    )
    return {int(r["project_id"]): int(r["n"]) for r in await cur.fetchall()}


async def progress(conn: Conn, job_id: str, attempt: int, done: int, total: int) -> bool:
    cur = await conn.execute(
        """UPDATE control.jobs SET cells_done = %s, cells_total = %s, updated_at = now()
            WHERE id = %s AND attempts = %s AND state = 'running' RETURNING id""",
        (done, total, job_id, attempt),
    )
    return await cur.fetchone() is not None


async def save_output(conn: Conn, job_id: str, attempt: int, notebook: dict[str, Any]) -> None:
    await conn.execute(
        """INSERT INTO control.job_outputs (job_id, attempt, notebook) VALUES (%s, %s, %s)
           ON CONFLICT (job_id) DO UPDATE SET attempt = excluded.attempt, notebook = excluded.notebook,
                                              updated_at = now()
           WHERE control.job_outputs.attempt <= excluded.attempt""",
        (job_id, attempt, Jsonb(notebook)),
    )


async def output(conn: Conn, job_id: str) -> dict[str, Any] | None:
    cur = await conn.execute("SELECT notebook FROM control.job_outputs WHERE job_id = %s", (job_id,))
    row = await cur.fetchone()
    return None if row is None else row["notebook"]


async def register_worker(
    conn: Conn, worker_id: str, hostname: str, pid: int, topics: list[str], concurrency: int
) -> None:
    await conn.execute(
        """INSERT INTO control.workers (id, hostname, pid, topics, concurrency) VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL""",
        (worker_id, hostname, pid, topics, concurrency),
    )


async def heartbeat(conn: Conn, worker_id: str, running: int) -> None:
    await conn.execute(
        "UPDATE control.workers SET heartbeat_at = now(), running = %s WHERE id = %s", (running, worker_id)
    )


async def worker_stopped(conn: Conn, worker_id: str) -> None:
    await conn.execute("UPDATE control.workers SET stopped_at = now(), running = 0 WHERE id = %s", (worker_id,))


async def worker_alive(conn: Conn, worker_id: str, stale_seconds: float) -> bool:
    cur = await conn.execute(
        """SELECT 1 FROM control.workers WHERE id = %s AND stopped_at IS NULL
              AND heartbeat_at > now() - make_interval(secs => %s)""",
        (worker_id, stale_seconds),
    )
    return await cur.fetchone() is not None


async def workers(conn: Conn, stale_seconds: float) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT id, hostname, pid, topics, concurrency, running, started_at, heartbeat_at,
                  (stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => %s)) AS alive
             FROM control.workers
            WHERE stopped_at IS NULL OR stopped_at > now() - interval '1 hour'
            ORDER BY started_at DESC""",
        (stale_seconds,),
    )
    return await cur.fetchall()


async def queue_counts(conn: Conn, project_id: int | None = None) -> dict[str, Any]:
    """Across the deployment, or for one project."""
    cur = await conn.execute(
        """SELECT count(*) FILTER (WHERE state = 'queued') AS queued,
                  count(*) FILTER (WHERE state = 'dispatched') AS dispatched,
                  count(*) FILTER (WHERE state IN ('running', 'retrying')) AS running,
                  extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'queued')) AS oldest
             FROM control.jobs
            WHERE state NOT IN ('succeeded', 'failed', 'cancelled') AND (%(p)s::bigint IS NULL OR project_id = %(p)s)""",
        {"p": project_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def running_on_dead_workers(conn: Conn, stale_seconds: float) -> list[dict[str, Any]]:
    """Running jobs whose worker is gone: ``stopped`` when it is known to have stopped (it said so, or its
    supervisor saw it exit), rather than merely silent."""
    cur = await conn.execute(
        """SELECT j.id::text AS id, j.project_id, j.attempts, j.max_attempts,
                  (w.id IS NULL OR w.stopped_at IS NOT NULL) AS stopped
             FROM control.jobs j
             LEFT JOIN control.workers w ON w.id = j.worker_id
            WHERE j.state = 'running'
              AND (w.id IS NULL OR w.stopped_at IS NOT NULL OR w.heartbeat_at < now() - make_interval(secs => %s))
            FOR UPDATE OF j SKIP LOCKED""",
        (stale_seconds,),
    )
    return await cur.fetchall()


# Retention. A job's events are its history; the job row holds its state. Each job keeps its last state
# change and its last progress (what a view rebuilding a job from its events needs) and its newest few
# events of any kind (the end of its log); the rest goes once the job has been finished for the retention
# period. A batch is a set of such jobs, locked (one being retried right now is skipped) and marked, so
# the next batch and the next run start after them; a retry clears the mark.
_PURGE_EVENTS = """
WITH batch AS (
    SELECT id FROM control.jobs
     WHERE state IN ('succeeded', 'failed', 'cancelled') AND events_purged_at IS NULL
       AND finished_at < now() - %(age)s
     ORDER BY finished_at
     LIMIT %(jobs)s
       FOR UPDATE SKIP LOCKED
), doomed AS (
    SELECT e.id
      FROM batch
     CROSS JOIN LATERAL (
           SELECT e.id, e.type, e.at,
                  row_number() OVER (ORDER BY e.id DESC) AS newest,
                  row_number() OVER (PARTITION BY e.type ORDER BY e.id DESC) AS newest_of_type
             FROM control.job_events e
            WHERE e.job_id = batch.id) AS e
     WHERE e.newest > %(keep)s
       AND NOT (e.type IN ('state', 'progress') AND e.newest_of_type = 1)
       AND e.at < now() - %(age)s
), gone AS (
    DELETE FROM control.job_events WHERE id IN (SELECT id FROM doomed) RETURNING 1
), marked AS (
    UPDATE control.jobs SET events_purged_at = now() WHERE id IN (SELECT id FROM batch) RETURNING 1
)
SELECT (SELECT count(*) FROM marked) AS jobs, (SELECT count(*) FROM gone) AS events"""


async def purge_events(conn: Conn, older_than: timedelta, *, keep_per_job: int, jobs: int) -> tuple[int, int]:
    """Purge the events of up to ``jobs`` jobs finished more than ``older_than`` ago (see ``_PURGE_EVENTS``);
    returns (jobs done, events deleted).

    An event row also marks its bus message as applied; keep ``older_than`` above the time a message can
    still be redelivered, or a late duplicate is recorded again (it can no longer change the job)."""
    cur = await conn.execute(_PURGE_EVENTS, {"age": older_than, "keep": keep_per_job, "jobs": jobs})
    row = await cur.fetchone()
    assert row is not None
    return int(row["jobs"]), int(row["events"])


async def forget_idempotency_keys(conn: Conn, older_than: timedelta, *, limit: int) -> int:
    """Release the submission keys of up to ``limit`` jobs finished more than ``older_than`` ago: a key
    guards against a retried request, which comes within minutes; much later, the same key is a new job.
    A job that is queued or running keeps its key whatever its age."""
    cur = await conn.execute(
        """UPDATE control.jobs SET idempotency_key = NULL
            WHERE id IN (SELECT id FROM control.jobs
                          WHERE state IN ('succeeded', 'failed', 'cancelled') AND idempotency_key IS NOT NULL
                            AND finished_at < now() - %s
                          ORDER BY finished_at LIMIT %s
                            FOR UPDATE SKIP LOCKED)""",
        (older_than, limit),
    )
    return cur.rowcount


async def xid_horizon(conn: Conn) -> tuple[int, int]:
    """(xmin, xmax) of a fresh snapshot: every transaction below xmin has ended (committed or rolled
    back), and xmax is the first transaction id not yet assigned."""
    cur = await conn.execute(
        """SELECT pg_snapshot_xmin(s)::text::bigint AS xmin, pg_snapshot_xmax(s)::text::bigint AS xmax
             FROM pg_current_snapshot() AS s"""
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["xmin"]), int(row["xmax"])
