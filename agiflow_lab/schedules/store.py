"""SQL for schedules and their firings. Parameters are always bound."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from agiflow_lab.db.database import Conn

CHANNEL = "agiflow_schedules"  # NOTIFY'd when a schedule changes: the scheduler recomputes its wake-up

SCHEDULE = """
    SELECT s.id::text AS id, p.slug AS project, s.project_id, s.name, s.description, s.cron, s.timezone,
           s.interval_seconds, s.start_at, s.anchor, s.target, s.body, s.input_notebook, s.missed, s.max_catch_up,
           s.misfire_grace_seconds, s.overlap, s.pass_rate_gate, s.paused, s.next_fire_at, s.missed_ticks, s.created_by,
           s.created_at, s.updated_at
      FROM control.schedules s JOIN control.projects p ON p.id = s.project_id"""

FIRING = """
    SELECT f.id, f.schedule_id::text AS schedule_id, f.tick, f.manual, f.outcome, f.reason, f.job_id::text AS job_id,
           f.run_id::text AS run_id, j.state AS job_state, f.fired_at, f.started_at
      FROM control.schedule_firings f LEFT JOIN control.jobs j ON j.id = f.job_id"""

COLUMNS = ("name", "description", "cron", "timezone", "interval_seconds", "start_at", "anchor", "target", "body",
           "input_notebook", "missed", "max_catch_up", "misfire_grace_seconds", "overlap", "pass_rate_gate", "paused",
           "next_fire_at")  # fmt: skip
JSON_COLUMNS = {"body", "input_notebook"}


def _value(name: str, value: Any) -> Any:
    return Jsonb(value) if name in JSON_COLUMNS and value is not None else value


async def notify(conn: Conn) -> None:
    await conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))


async def insert(conn: Conn, project_id: int, created_by: str, fields: dict[str, Any]) -> str | None:
    """The new schedule's id, or None when the project has one of that name already."""
    schedule_id = str(uuid.uuid4())
    names = ", ".join(COLUMNS)
    marks = ", ".join(["%s"] * len(COLUMNS))
    cur = await conn.execute(
        f"""INSERT INTO control.schedules (id, project_id, created_by, {names}) VALUES (%s, %s, %s, {marks})
            ON CONFLICT (project_id, name) DO NOTHING RETURNING id""",
        (schedule_id, project_id, created_by, *(_value(c, fields[c]) for c in COLUMNS)),
    )
    return schedule_id if await cur.fetchone() is not None else None


async def update(conn: Conn, schedule_id: str, fields: dict[str, Any]) -> None:
    names = [c for c in COLUMNS if c in fields]
    assignments = ", ".join(f"{c} = %s" for c in names)
    await conn.execute(
        f"UPDATE control.schedules SET {assignments}, updated_at = now() WHERE id = %s",
        (*(_value(c, fields[c]) for c in names), schedule_id),
    )


async def get(
    conn: Conn, schedule_id: str, project_id: int | None = None, *, lock: bool = False, skip_locked: bool = False
) -> dict[str, Any] | None:
    try:
        uuid.UUID(schedule_id)
    except ValueError:
        return None
    query = SCHEDULE + " WHERE s.id = %s AND (%s::bigint IS NULL OR s.project_id = %s)"
    if lock:
        query += " FOR UPDATE OF s" + (" SKIP LOCKED" if skip_locked else "")
    cur = await conn.execute(query, (schedule_id, project_id, project_id))
    return await cur.fetchone()


async def by_name(conn: Conn, project_id: int, name: str) -> dict[str, Any] | None:
    cur = await conn.execute(SCHEDULE + " WHERE s.project_id = %s AND s.name = %s", (project_id, name))
    return await cur.fetchone()


async def search(
    conn: Conn, project_id: int, *, paused: bool | None, target: str | None,
    before: tuple[datetime, uuid.UUID] | None, limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    before_at, before_id = before if before else (None, None)
    cur = await conn.execute(
        SCHEDULE
        + """ WHERE s.project_id = %s
                AND (%s::boolean IS NULL OR s.paused = %s)
                AND (%s::text IS NULL OR s.target = %s)
                AND (%s::timestamptz IS NULL OR (s.created_at, s.id) < (%s::timestamptz, %s::uuid))
              ORDER BY s.created_at DESC, s.id DESC LIMIT %s""",
        (project_id, paused, paused, target, target, before_at, before_at, before_id, limit),
    )
    return await cur.fetchall()


async def delete(conn: Conn, schedule_id: str) -> None:
    await conn.execute("DELETE FROM control.schedules WHERE id = %s", (schedule_id,))


async def due(conn: Conn, now: datetime, limit: int) -> list[str]:
    """Running schedules with a tick at or before ``now``, or with a queued firing."""
    cur = await conn.execute(
        """SELECT id::text AS id FROM control.schedules
            WHERE NOT paused AND next_fire_at <= %s
            UNION
           SELECT DISTINCT f.schedule_id::text FROM control.schedule_firings f
             JOIN control.schedules s ON s.id = f.schedule_id
            WHERE f.outcome = 'queued' AND NOT s.paused
            LIMIT %s""",
        (now, limit),
    )
    return [str(r["id"]) for r in await cur.fetchall()]


async def next_due(conn: Conn) -> tuple[datetime | None, bool]:
    """The earliest tick of any running schedule, and whether a running schedule has a queued firing."""
    cur = await conn.execute(
        """SELECT (SELECT min(next_fire_at) FROM control.schedules WHERE NOT paused) AS at,
                  EXISTS (SELECT 1 FROM control.schedule_firings f JOIN control.schedules s ON s.id = f.schedule_id
                           WHERE f.outcome = 'queued' AND NOT s.paused) AS queued"""
    )
    row = await cur.fetchone()
    assert row is not None
    return row["at"], bool(row["queued"])


async def add_missed(conn: Conn, schedule_id: str, missed: int, next_fire_at: datetime) -> None:
    await conn.execute(
        """UPDATE control.schedules SET next_fire_at = %s, missed_ticks = missed_ticks + %s WHERE id = %s""",
        (next_fire_at, missed, schedule_id),
    )


async def insert_firing(
    conn: Conn, schedule_id: str, project_id: int, tick: datetime, *, manual: bool, outcome: str,
    reason: str | None = None,
) -> int | None:  # fmt: skip
    """The firing's id, or None when this (schedule, tick) has fired before: the one-firing-per-tick rule."""
    cur = await conn.execute(
        """INSERT INTO control.schedule_firings (schedule_id, project_id, tick, manual, outcome, reason)
           VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (schedule_id, manual, tick) DO NOTHING RETURNING id""",
        (schedule_id, project_id, tick, manual, outcome, reason),
    )
    row = await cur.fetchone()
    return None if row is None else int(row["id"])


async def set_firing(
    conn: Conn, firing_id: int, outcome: str, *, job_id: str | None = None, run_id: str | None = None,
    reason: str | None = None,
) -> None:  # fmt: skip
    await conn.execute(
        """UPDATE control.schedule_firings
              SET outcome = %s, job_id = %s, run_id = %s, reason = %s,
                  started_at = CASE WHEN %s = 'started' THEN now() ELSE started_at END
            WHERE id = %s""",
        (outcome, job_id, run_id, reason, outcome, firing_id),
    )


async def running_firing(conn: Conn, schedule_id: str) -> int | None:
    """A started firing whose job has not finished yet (the overlap policies' "previous one still runs")."""
    cur = await conn.execute(
        """SELECT f.id FROM control.schedule_firings f JOIN control.jobs j ON j.id = f.job_id
            WHERE f.schedule_id = %s AND f.outcome = 'started'
              AND j.state NOT IN ('succeeded', 'failed', 'cancelled')
            LIMIT 1""",
        (schedule_id,),
    )
    row = await cur.fetchone()
    return None if row is None else int(row["id"])


async def queued_firing(conn: Conn, schedule_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        """SELECT id, tick FROM control.schedule_firings WHERE schedule_id = %s AND outcome = 'queued'
            ORDER BY tick LIMIT 1""",
        (schedule_id,),
    )
    return await cur.fetchone()


async def firings(
    conn: Conn, schedule_id: str, *, outcome: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        FIRING
        + """ WHERE f.schedule_id = %s AND (%s::text IS NULL OR f.outcome = %s)
                AND (%s::bigint IS NULL OR f.id < %s)
              ORDER BY f.id DESC LIMIT %s""",
        (schedule_id, outcome, outcome, before, before, limit),
    )
    return await cur.fetchall()


async def last_firings(conn: Conn, schedule_ids: list[str]) -> dict[str, dict[str, Any]]:
    cur = await conn.execute(
        """SELECT DISTINCT ON (f.schedule_id) f.id, f.schedule_id::text AS schedule_id, f.tick, f.manual, f.outcome,
                  f.reason, f.job_id::text AS job_id, f.run_id::text AS run_id, j.state AS job_state, f.fired_at,
                  f.started_at
             FROM control.schedule_firings f LEFT JOIN control.jobs j ON j.id = f.job_id
            WHERE f.schedule_id = ANY(%s::uuid[])
            ORDER BY f.schedule_id, f.id DESC""",
        (schedule_ids,),
    )
    return {r["schedule_id"]: r for r in await cur.fetchall()}
