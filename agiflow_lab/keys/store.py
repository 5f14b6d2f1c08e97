from __future__ import annotations

from typing import Any

from agiflow_lab.db.database import Conn

COLUMNS = "k.id, k.name, k.role, k.created_by, k.created_at, k.last_used_at, k.revoked_at"


async def insert(
    conn: Conn, key_id: str, project_id: int, name: str, role: str, secret_hash: str, by: str
) -> dict[str, Any]:
    cur = await conn.execute(
        f"""INSERT INTO control.api_keys AS k (id, project_id, name, role, secret_hash, created_by)
            VALUES (%s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}""",
        (key_id, project_id, name, role, secret_hash, by),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def for_auth(conn: Conn, key_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        """SELECT k.secret_hash, k.role, k.revoked_at, p.slug AS project
             FROM control.api_keys k JOIN control.projects p ON p.id = k.project_id WHERE k.id = %s""",
        (key_id,),
    )
    return await cur.fetchone()


async def list_for_project(conn: Conn, project_id: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM control.api_keys k WHERE k.project_id = %s ORDER BY k.created_at DESC",
        (project_id,),
    )
    return await cur.fetchall()


async def revoke(conn: Conn, project_id: int, key_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"""UPDATE control.api_keys k SET revoked_at = coalesce(revoked_at, now())
             WHERE k.project_id = %s AND k.id = %s RETURNING {COLUMNS}""",
        (project_id, key_id),
    )
    return await cur.fetchone()


async def touch(conn: Conn, key_id: str) -> None:
    await conn.execute("UPDATE control.api_keys SET last_used_at = now() WHERE id = %s", (key_id,))
