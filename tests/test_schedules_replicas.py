"""Exactly one firing per tick across API replicas: three real servers on one database, a schedule every 2 s for
a minute, the replica that fires (the scheduler lock's holder) killed with SIGKILL and restarted (same folder).

Every tick from the first to the last fires once (one firing row, one job), with no gap where the leader died:
another replica takes the lock within a second and fires the ticks it missed, which are still within the
schedule's grace, so none counts as missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from tests.support.api import Api
from tests.support.polling import until
from tests.support.servers import JupyterServer, create_database, start_jupyter

INTERVAL = 2
RUN_FOR = 60  # seconds of ticks
LOCK_CLASS, LOCK_OBJECT = 0x41674255, 2  # the scheduler's advisory lock (agiflow_lab.schedules.scheduler)


def leader_pid(db_url: str, servers: list[JupyterServer]) -> int | None:
    """The server process whose session holds the scheduler lock of this database (other tests' servers hold
    the lock of theirs on the same Postgres)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.granted
                  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
            (LOCK_CLASS, LOCK_OBJECT),
        ).fetchone()
    if row is None:
        return None
    pid = int(row[0].rsplit(":", 1)[1])  # "agiflow scheduler <host>:<pid>"
    return pid if any(s.process.pid == pid and s.process.poll() is None for s in servers) else None


def firings_and_jobs(db_url: str, schedule_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        firings = conn.execute(
            """SELECT tick, outcome, job_id::text AS job_id, fired_at FROM control.schedule_firings
                WHERE schedule_id = %s ORDER BY tick""",
            (schedule_id,),
        ).fetchall()
        jobs = conn.execute(
            "SELECT id::text AS id, idempotency_key FROM control.jobs WHERE idempotency_key LIKE %s",
            (f"schedule:{schedule_id}:%",),
        ).fetchall()
    return firings, jobs


async def test_three_replicas_fire_every_tick_once_while_the_leader_is_killed_and_restarted(
    pg_server: str, tmp_path: Path
) -> None:
    db_url = create_database(pg_server)
    env = {"AGIFLOW_WORKERS": "0", "AGIFLOW_SECRET_KEY_FILE": str(tmp_path / "secret.key")}  # no jobs run: counted

    def start(name: str) -> JupyterServer:
        return start_jupyter(db_url, tmp_path / name, extra_env=env)

    servers = list(await asyncio.gather(*(asyncio.to_thread(start, f"replica-{i}") for i in range(3))))
    replacement: asyncio.Task[JupyterServer] | None = None
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
            api = Api(servers[0], client)
            r = await api.post("/projects/default/schedules", {
                "name": "every-2s", "interval_seconds": INTERVAL, "start_at": first.isoformat(),
                "job": {"notebook": "builtin:hello"}})  # fmt: skip
            assert r.status_code == 201, r.text
            schedule_id = r.json()["id"]

            async def fired(n: int) -> bool:
                return len((await asyncio.to_thread(firings_and_jobs, db_url, schedule_id))[0]) >= n

            await until(lambda: fired(4), "four ticks to fire", timeout=30)
            victim = await asyncio.to_thread(leader_pid, db_url, servers)
            assert victim is not None, "no replica holds the scheduler lock"
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            dead = next(s for s in servers if s.process.pid == victim)
            dead.process.wait()
            # The survivors take over while the killed replica restarts; it comes back as a follower.
            replacement = asyncio.create_task(asyncio.to_thread(start, f"replica-{servers.index(dead)}"))
            await until(lambda: asyncio.to_thread(leader_pid, db_url, servers), "a surviving replica to lead")
            took_over = time.monotonic() - killed_at
            servers.append(await replacement)
            replacement = None

            remaining = (first + timedelta(seconds=RUN_FOR) - datetime.now(UTC)).total_seconds()
            await until(lambda: fired(RUN_FOR // INTERVAL + 1), "a minute of ticks", timeout=remaining + 15)
            live = next(s for s in servers if s.process.poll() is None)
            r = await Api(live, client).post("/projects/default/schedules/every-2s/pause")
            assert r.status_code == 200, r.text
            new_leader = await asyncio.to_thread(leader_pid, db_url, servers)
    finally:
        if replacement is not None:  # a failure while it started: stop it too
            with contextlib.suppress(Exception):
                servers.append(await replacement)
        for server in servers:
            server.stop()

    firings, jobs = firings_and_jobs(db_url, schedule_id)
    ticks = [f["tick"] for f in firings]
    expected = [first + timedelta(seconds=INTERVAL * k) for k in range(len(ticks))]
    assert ticks == expected, f"gaps or repeats: {[t.isoformat() for t in ticks]}"  # contiguous, each once
    assert len(ticks) >= RUN_FOR // INTERVAL + 1
    assert {f["outcome"] for f in firings} == {"started"}
    assert len(jobs) == len(firings) and {j["id"] for j in jobs} == {f["job_id"] for f in firings}
    assert sorted(j["idempotency_key"] for j in jobs) == sorted(
        f"schedule:{schedule_id}:{t.isoformat()}" for t in ticks
    )
    assert new_leader is not None and new_leader != victim
    lag = max((f["fired_at"] - f["tick"]).total_seconds() for f in firings)
    print(
        f"\n{len(ticks)} ticks, each fired once; the lock moved {took_over:.1f}s after the kill; worst lag {lag:.1f}s"
    )
    assert lag < 10, lag
