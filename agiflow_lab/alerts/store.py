"""SQL for alert rules, incidents and silences. Parameters are always bound."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from agiflow_lab.db.database import Conn

CHANNEL = "agiflow_alerts"  # NOTIFY'd when a rule changes: the evaluator looks at once

RULE = """
    SELECT r.id::text AS id, p.slug AS project, r.project_id, r.name, r.description, r.metric, r.score_name,
           r.comparison, r.threshold, r.window_seconds, r.for_seconds, r.enabled, r.state, r.pending_since,
           r.incident_id, r.last_value, r.evaluated_at, r.created_by, r.created_at, r.updated_at,
           (SELECT max(s.ends_at) FROM control.alert_silences s
             WHERE s.project_id = r.project_id AND (s.rule_id IS NULL OR s.rule_id = r.id)
               AND s.ends_at > now()) AS silenced_until
      FROM control.alert_rules r JOIN control.projects p ON p.id = r.project_id"""

INCIDENT = """
    SELECT i.id, r.name AS rule, CASE WHEN i.resolved_at IS NULL THEN 'firing' ELSE 'resolved' END AS state,
           i.started_at, i.resolved_at, i.start_value, i.end_value, i.peak_value, i.notified
      FROM control.alert_incidents i JOIN control.alert_rules r ON r.id = i.rule_id"""

SILENCE = """
    SELECT s.id::text AS id, r.name AS rule, s.ends_at, s.reason, s.ends_at > now() AS active, s.created_by,
           s.created_at
      FROM control.alert_silences s LEFT JOIN control.alert_rules r ON r.id = s.rule_id"""

RULE_COLUMNS = ("name", "description", "metric", "score_name", "comparison", "threshold", "window_seconds",
                "for_seconds", "enabled")  # fmt: skip


async def notify(conn: Conn) -> None:
    await conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))


async def insert_rule(conn: Conn, project_id: int, created_by: str, fields: dict[str, Any]) -> str | None:
    rule_id = str(uuid.uuid4())
    names = ", ".join(RULE_COLUMNS)
    marks = ", ".join(["%s"] * len(RULE_COLUMNS))
    cur = await conn.execute(
        f"""INSERT INTO control.alert_rules (id, project_id, created_by, {names}) VALUES (%s, %s, %s, {marks})
            ON CONFLICT (project_id, name) DO NOTHING RETURNING id""",
        (rule_id, project_id, created_by, *(fields[c] for c in RULE_COLUMNS)),
    )
    return rule_id if await cur.fetchone() is not None else None


async def update_rule(conn: Conn, rule_id: str, fields: dict[str, Any]) -> None:
    names = [c for c in RULE_COLUMNS if c in fields]
    if not names:
        return
    assignments = ", ".join(f"{c} = %s" for c in names)
    await conn.execute(
        f"UPDATE control.alert_rules SET {assignments}, updated_at = now() WHERE id = %s",
        (*(fields[c] for c in names), rule_id),
    )


async def rule(conn: Conn, rule_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = RULE + " WHERE r.id = %s" + (" FOR UPDATE OF r" if lock else "")
    cur = await conn.execute(query, (rule_id,))
    return await cur.fetchone()


async def rule_by_name(conn: Conn, project_id: int, name: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = RULE + " WHERE r.project_id = %s AND r.name = %s" + (" FOR UPDATE OF r" if lock else "")
    cur = await conn.execute(query, (project_id, name))
    return await cur.fetchone()


async def rules(conn: Conn, project_id: int) -> list[dict[str, Any]]:
    cur = await conn.execute(RULE + " WHERE r.project_id = %s ORDER BY r.name", (project_id,))
    return await cur.fetchall()


async def enabled_rules(conn: Conn) -> list[dict[str, Any]]:
    cur = await conn.execute(RULE + " WHERE r.enabled ORDER BY r.id")
    return await cur.fetchall()


async def delete_rule(conn: Conn, rule_id: str) -> None:
    await conn.execute("DELETE FROM control.alert_rules WHERE id = %s", (rule_id,))


async def save_state(
    conn: Conn, rule_id: str, state: str, pending_since: datetime | None, incident_id: int | None,
    value: float | None, now: datetime,
) -> None:  # fmt: skip
    await conn.execute(
        """UPDATE control.alert_rules SET state = %s, pending_since = %s, incident_id = %s, last_value = %s,
                  evaluated_at = %s WHERE id = %s""",
        (state, pending_since, incident_id, value, now, rule_id),
    )


async def silenced(conn: Conn, project_id: int, rule_id: str, now: datetime) -> bool:
    cur = await conn.execute(
        """SELECT 1 FROM control.alert_silences
            WHERE project_id = %s AND (rule_id IS NULL OR rule_id = %s) AND ends_at > %s LIMIT 1""",
        (project_id, rule_id, now),
    )
    return await cur.fetchone() is not None


async def open_incident(
    conn: Conn, rule_id: str, project_id: int, now: datetime, value: float | None, *, notified: bool
) -> int:
    cur = await conn.execute(
        """INSERT INTO control.alert_incidents (rule_id, project_id, started_at, start_value, peak_value, notified)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (rule_id, project_id, now, value, value, notified),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["id"])


async def track_peak(conn: Conn, incident_id: int, value: float | None, upward: bool) -> None:
    await conn.execute(
        f"""UPDATE control.alert_incidents SET peak_value = {"greatest" if upward else "least"}(peak_value, %s)
             WHERE id = %s""",
        (value, incident_id),
    )


async def close_incident(conn: Conn, incident_id: int, now: datetime, value: float | None) -> dict[str, Any] | None:
    cur = await conn.execute(
        """UPDATE control.alert_incidents SET resolved_at = %s, end_value = %s
            WHERE id = %s AND resolved_at IS NULL RETURNING id, notified, started_at, peak_value""",
        (now, value, incident_id),
    )
    return await cur.fetchone()


async def incidents(
    conn: Conn, project_id: int, rule_id: str | None, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        INCIDENT
        + """ WHERE i.project_id = %(p)s AND (%(rule)s::uuid IS NULL OR i.rule_id = %(rule)s::uuid)
                         AND (%(before)s::bigint IS NULL OR i.id < %(before)s) ORDER BY i.id DESC LIMIT %(limit)s""",
        {"p": project_id, "rule": rule_id, "before": before, "limit": limit},
    )
    return await cur.fetchall()


async def insert_silence(
    conn: Conn, project_id: int, rule_id: str | None, ends_at: datetime, reason: str, created_by: str
) -> str:
    silence_id = str(uuid.uuid4())
    await conn.execute(
        """INSERT INTO control.alert_silences (id, project_id, rule_id, ends_at, reason, created_by)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (silence_id, project_id, rule_id, ends_at, reason, created_by),
    )
    return silence_id


async def silence(conn: Conn, project_id: int, silence_id: str) -> dict[str, Any] | None:
    try:
        uuid.UUID(silence_id)
    except ValueError:
        return None
    cur = await conn.execute(SILENCE + " WHERE s.project_id = %s AND s.id = %s", (project_id, silence_id))
    return await cur.fetchone()


async def silences(conn: Conn, project_id: int) -> list[dict[str, Any]]:
    cur = await conn.execute(SILENCE + " WHERE s.project_id = %s ORDER BY s.ends_at DESC, s.id", (project_id,))
    return await cur.fetchall()


async def delete_silence(conn: Conn, silence_id: str) -> None:
    await conn.execute("DELETE FROM control.alert_silences WHERE id = %s", (silence_id,))
