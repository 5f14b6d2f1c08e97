"""SQL for notification channels and in-app notifications. Parameters are always bound."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from agiflow_lab.db.database import Conn

LIVE_CHANNEL = "agiflow_notifications"  # NOTIFY'd with the project id when an in-app notification is stored

CHANNEL = """
    SELECT c.id::text AS id, p.slug AS project, c.project_id, c.name, c.kind, c.config, c.secret, c.enabled,
           c.created_by, c.created_at
      FROM control.notification_channels c JOIN control.projects p ON p.id = c.project_id"""

NOTIFICATION = """
    SELECT n.id, p.slug AS project, n.event, n.severity, n.title, n.body, n.data, n.created_at,
           (r.principal IS NOT NULL) AS read
      FROM control.notifications n JOIN control.projects p ON p.id = n.project_id
      LEFT JOIN control.notification_reads r ON r.notification_id = n.id AND r.principal = %(who)s"""


async def insert_channel(
    conn: Conn, project_id: int, name: str, kind: str, config: dict[str, Any], secret: bytes | None, enabled: bool,
    created_by: str,
) -> str | None:  # fmt: skip
    """The new channel's id, or None when the project has one of that name already."""
    channel_id = str(uuid.uuid4())
    cur = await conn.execute(
        """INSERT INTO control.notification_channels (id, project_id, name, kind, config, secret, enabled, created_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (project_id, name) DO NOTHING RETURNING id""",
        (channel_id, project_id, name, kind, Jsonb(config), secret, enabled, created_by),
    )
    return channel_id if await cur.fetchone() is not None else None


async def update_channel(
    conn: Conn, channel_id: str, *, config: dict[str, Any], secret: bytes | None, enabled: bool
) -> None:
    await conn.execute(
        "UPDATE control.notification_channels SET config = %s, secret = %s, enabled = %s WHERE id = %s",
        (Jsonb(config), secret, enabled, channel_id),
    )


async def channel(conn: Conn, channel_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(CHANNEL + " WHERE c.id = %s", (channel_id,))
    return await cur.fetchone()


async def channel_by_name(conn: Conn, project_id: int, name: str) -> dict[str, Any] | None:
    cur = await conn.execute(CHANNEL + " WHERE c.project_id = %s AND c.name = %s", (project_id, name))
    return await cur.fetchone()


async def channels(conn: Conn, project_id: int, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    cur = await conn.execute(
        CHANNEL + " WHERE c.project_id = %s AND (c.enabled OR NOT %s) ORDER BY c.name", (project_id, enabled_only)
    )
    return await cur.fetchall()


async def delete_channel(conn: Conn, channel_id: str) -> None:
    await conn.execute("DELETE FROM control.notification_channels WHERE id = %s", (channel_id,))


async def insert_notification(conn: Conn, project_id: int, message_id: str, event: dict[str, Any]) -> bool:
    """Stored once per delivery message; False for a redelivery."""
    cur = await conn.execute(
        """INSERT INTO control.notifications (project_id, message_id, event, severity, title, body, data)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING""",
        (project_id, message_id, event["event"], event["severity"], event["title"], event["body"],
         Jsonb(event["data"])),
    )  # fmt: skip
    if cur.rowcount == 1:
        await conn.execute("SELECT pg_notify(%s, %s)", (LIVE_CHANNEL, str(project_id)))
    return cur.rowcount == 1


async def notifications(
    conn: Conn, project_id: int, who: str, *, unread: bool, before: int | None, limit: int
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        NOTIFICATION
        + """ WHERE n.project_id = %(p)s AND (%(before)s::bigint IS NULL OR n.id < %(before)s)
                             AND (NOT %(unread)s OR r.principal IS NULL)
                           ORDER BY n.id DESC LIMIT %(limit)s""",
        {"who": who, "p": project_id, "before": before, "unread": unread, "limit": limit},
    )
    return await cur.fetchall()


async def unread_count(conn: Conn, project_id: int, who: str) -> int:
    cur = await conn.execute(
        """SELECT count(*) AS n FROM control.notifications n
            WHERE n.project_id = %s AND NOT EXISTS (SELECT 1 FROM control.notification_reads r
                                                     WHERE r.notification_id = n.id AND r.principal = %s)""",
        (project_id, who),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def mark_read(conn: Conn, project_id: int, who: str, notification_id: int | None) -> int:
    """One notification (or, with None, all of the project's) read by ``who``; how many were unread."""
    cur = await conn.execute(
        """INSERT INTO control.notification_reads (notification_id, principal)
           SELECT id, %s FROM control.notifications WHERE project_id = %s AND (%s::bigint IS NULL OR id = %s)
           ON CONFLICT DO NOTHING""",
        (who, project_id, notification_id, notification_id),
    )
    return cur.rowcount


async def notification_exists(conn: Conn, project_id: int, notification_id: int) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM control.notifications WHERE project_id = %s AND id = %s", (project_id, notification_id)
    )
    return await cur.fetchone() is not None
