"""Built-in notifications: what the platform announces to a project's channels without a rule.

- ``job.failed`` / ``run.failed``: a job (an evaluation run's job: the run) ended failed, announced in the
  transaction that records its end (``JobService.apply_event``), so a redelivered event announces nothing.

- ``worker.lost``: a supervised worker's process ended without saying it stopped, with jobs running on it
  (``JobService.worker_exited``): each project with a job there hears of it once (a worker that stopped
  properly has said so, and a second report of the same exit finds it stopped).

- ``schedule.pass_rate_below_gate``: a run a schedule started succeeded with a pass rate (items where every
  evaluator passed / items finished, as the run's aggregates count it) below the schedule's ``pass_rate_gate``,
  announced in the transaction that records the run's end (a batch inference without evaluators has no
  pass rate and is not gated).

- ``bus.dead_letters``: a delivery to one of the project's channels failed its last attempt and is
  dead-lettered (``Notifier``): the project's *other* channels hear that this one is failing, at most once
  an hour per channel and notifier process, so a receiver down for a day is one message, not one per event.
  A delivery of this event that is dead-lettered in turn announces nothing (no loop between two broken
  receivers). ``/bus/dead-letters`` lists every dead letter and redelivers it.

A silent worker (no heartbeat) and the pass rate of scheduled runs over a window are alert rules
(``live_workers < 1``, ``eval_pass_rate < x``).
"""

from __future__ import annotations

from typing import Any

from agiflow_lab.db.database import Conn
from agiflow_lab.notifications.announce import announce, event

EVAL_NOTEBOOK = "builtin:evaluate"  # agiflow_lab.evals.service.NOTEBOOK (not imported: evals imports jobs)


async def job_failed(conn: Conn, job: dict[str, Any], error: dict[str, Any] | None) -> None:
    """``job``: the job's row as ``agiflow_lab.jobs.store`` reads it (with its project's slug and its run)."""
    reason = "" if not error else f"{error.get('ename') or 'Error'}: {error.get('evalue') or ''}".strip()
    data = {"job_id": job["id"], "notebook": job["notebook"], "error": reason}
    if job.get("run_id") is not None or job["notebook"] == EVAL_NOTEBOOK:
        title = f"Evaluation run {job['run_name']} failed" if job.get("run_name") else "An evaluation run failed"
        what = event("run.failed", "warning", job["project"], title, reason, data={**data, "run_id": job.get("run_id")})
    else:
        what = event("job.failed", "warning", job["project"], f"Job {job['notebook']} failed", reason, data=data)
    await announce(conn, job["project_id"], what)


async def run_succeeded(conn: Conn, job: dict[str, Any]) -> None:
    """``job``: as for ``job_failed``; a run no schedule with a gate started announces nothing."""
    if job.get("run_id") is None:
        return
    cur = await conn.execute(
        """SELECT s.name, s.pass_rate_gate, f.tick, f.manual, t.passed, t.done
             FROM control.schedule_firings f JOIN control.schedules s ON s.id = f.schedule_id
             JOIN control.eval_runs e ON e.id = f.run_id AND jsonb_array_length(e.evaluators) > 0
             CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE r.passed) AS passed, count(*) AS done
                                   FROM analytics.eval_results r WHERE r.run_id = f.run_id) t
            WHERE f.run_id = %s AND s.pass_rate_gate IS NOT NULL""",
        (job["run_id"],),
    )
    row = await cur.fetchone()
    if row is None or not row["done"] or row["passed"] / row["done"] >= row["pass_rate_gate"]:
        return
    rate = row["passed"] / row["done"]
    what = event(
        "schedule.pass_rate_below_gate", "warning", job["project"],
        f"Scheduled run {job.get('run_name') or job['run_id']} passed {rate:.0%}, below its gate",
        f"Schedule {row['name']}: {row['passed']} of {row['done']} items passed ({rate:.1%}); the gate is "
        f"{row['pass_rate_gate']:.1%}.",
        data={"schedule": row["name"], "run_id": job["run_id"], "job_id": job["id"], "pass_rate": rate,
              "gate": row["pass_rate_gate"], "passed": row["passed"], "items": row["done"],
              "tick": row["tick"].isoformat(), "manual": row["manual"]},
    )  # fmt: skip
    await announce(conn, job["project_id"], what)


async def worker_lost(conn: Conn, worker_id: str) -> None:
    """Before the worker is marked stopped, in the same transaction."""
    cur = await conn.execute(
        """SELECT j.project_id, p.slug, w.hostname, w.pid, count(*) AS jobs
             FROM control.workers w JOIN control.jobs j ON j.worker_id = w.id
             JOIN control.projects p ON p.id = j.project_id
            WHERE w.id = %s AND w.stopped_at IS NULL AND j.state IN ('dispatched', 'running')
            GROUP BY j.project_id, p.slug, w.hostname, w.pid""",
        (worker_id,),
    )
    for row in await cur.fetchall():
        where = f"{row['hostname']}:{row['pid']}"
        what = event("worker.lost", "critical", row["slug"], f"Worker {where} was lost",
                     f"{row['jobs']} job(s) of this project were running on it; they go back to the queue.",
                     data={"worker_id": worker_id, "jobs": row["jobs"]})  # fmt: skip
        await announce(conn, row["project_id"], what)


async def delivery_dead_lettered(
    conn: Conn, project_id: int, project: str, channel: dict[str, Any], failed: str, attempts: int, error: str
) -> None:
    """``channel``: the failing channel's row; ``failed``: the event type whose delivery gave up."""
    what = event("bus.dead_letters", "warning", project, f"Notifications to channel {channel['name']} are failing",
                 f"A {failed} notification was dead-lettered after {attempts} attempts ({error}). "
                 "GET /bus/dead-letters?topic=notifications lists it and can redeliver it.",
                 data={"channel": channel["name"], "channel_id": channel["id"], "failed_event": failed,
                       "attempts": attempts, "error": error})  # fmt: skip
    await announce(conn, project_id, what, except_channel=channel["id"])
