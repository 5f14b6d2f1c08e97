"""The audit log: written in the same transaction as the change it records, so the two never disagree."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from agiflow_lab.audit.models import AuditEntry
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Conn


async def record(
    conn: Conn,
    *,
    project_id: int | None,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: str,
    before: Any = None,
    after: Any = None,
) -> None:
    await conn.execute(
        """INSERT INTO control.audit_log (project_id, actor, action, resource_type, resource_id, before, after)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (
            project_id,
            actor.principal,
            action,
            resource_type,
            resource_id,
            None if before is None else Jsonb(before),
            None if after is None else Jsonb(after),
        ),
    )


async def list_entries(
    conn: Conn, project_id: int, *, resource_type: str | None, before_id: int | None, limit: int
) -> list[AuditEntry]:
    cur = await conn.execute(
        """SELECT id, actor, action, resource_type, resource_id, before, after, at
             FROM control.audit_log
            WHERE project_id = %s
              AND (%s::text IS NULL OR resource_type = %s)
              AND (%s::bigint IS NULL OR id < %s)
            ORDER BY id DESC LIMIT %s""",
        (project_id, resource_type, resource_type, before_id, before_id, limit),
    )
    return [AuditEntry.model_validate(row) for row in await cur.fetchall()]
