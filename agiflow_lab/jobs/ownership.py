"""Which worker runs a job. Written directly by workers, under the job's row lock.

A job message can arrive twice (at-least-once delivery; a dead worker's lease expiring; a Kafka
rebalance). The claim decides, atomically, whether this delivery runs the job:
- a job already finished or cancelled is never run again;
- a job another live worker is running is left to it;
- a job whose worker stopped heartbeating is taken over as a new attempt (up to ``max_attempts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agiflow_lab.config import Settings
from agiflow_lab.db.database import Database
from agiflow_lab.jobs import store
from agiflow_lab.jobs.models import FINAL_STATES

# A worker heartbeats every few seconds; one silent this long is presumed dead and its jobs are taken
# over. ``Settings.worker_stale_seconds`` (AGIFLOW_WORKER_STALE_SECONDS) lowers it for faster recovery at
# the risk of false alarms.
STALE_AFTER_SECONDS = Settings.worker_stale_seconds


@dataclass(frozen=True)
class Claim:
    job: dict[str, Any]
    attempt: int
    input_notebook: dict[str, Any] | None


Skip = Literal["finished", "owned-elsewhere", "cancelled", "exhausted", "missing"]


async def claim(db: Database, job_id: str, worker_id: str, *, stale_after: float = STALE_AFTER_SECONDS) -> Claim | Skip:
    async with db.transaction() as conn:
        job = await store.get(conn, job_id, lock=True)
        if job is None:
            return "missing"
        if job["state"] in FINAL_STATES:
            return "finished"
        if job["cancel_requested"]:
            await store.set_state(conn, job_id, "cancelled", finished_at="now()")
            await store.add_event(conn, job_id, job["project_id"], "state", {"state": "cancelled"})
            return "cancelled"
        owner = job["worker_id"]
        if job["state"] == "running" and owner != worker_id:
            if owner and await store.worker_alive(conn, owner, stale_after):
                return "owned-elsewhere"
        if job["attempts"] >= job["max_attempts"]:
            error = {"ename": "WorkerLost", "evalue": f"no attempt left after {job['attempts']}", "traceback": []}
            await store.set_state(conn, job_id, "failed", finished_at="now()", error=error)
            await store.add_event(conn, job_id, job["project_id"], "state", {"state": "failed", "error": error})
            return "exhausted"
        attempt = int(job["attempts"]) + 1
        if job["state"] == "running":  # taking over from a dead worker
            await store.add_event(
                conn, job_id, job["project_id"], "state",
                {"state": "retrying", "reason": f"worker {owner} stopped responding"}, attempt=attempt - 1,
            )  # fmt: skip
        await store.set_state(
            conn, job_id, "running", worker_id=worker_id, attempts=attempt, started_at="now()", cells_done=0,
            error=None, result=None,
        )  # fmt: skip
        # Recorded here, with the claim, rather than sent over the bus: the claim is already the fact.
        await store.add_event(conn, job_id, job["project_id"], "state", {"state": "running", "worker": worker_id},
                              attempt=attempt)  # fmt: skip
        notebook = await store.input_notebook(conn, job_id)
    return Claim(job=job, attempt=attempt, input_notebook=notebook)


async def hand_back(db: Database, job_id: str, worker_id: str, attempt: int, reason: str) -> None:
    """A stopping worker returns a job it cannot finish; the next claim runs it without waiting."""
    async with db.transaction() as conn:
        job = await store.get(conn, job_id, lock=True)
        if job is None or job["state"] != "running" or job["worker_id"] != worker_id or job["attempts"] != attempt:
            return
        # The interrupted attempt does not count against the job: the worker, not the notebook, stopped.
        await store.set_state(conn, job_id, "retrying", worker_id=None, attempts=attempt - 1)
        await store.add_event(conn, job_id, job["project_id"], "state", {"state": "retrying", "reason": reason},
                              attempt=attempt)  # fmt: skip


async def cancel_requested(db: Database, job_ids: list[str]) -> list[str]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT id::text AS id FROM control.jobs WHERE id = ANY(%s::uuid[]) AND cancel_requested", (job_ids,)
        )
        return [r["id"] for r in await cur.fetchall()]
