from __future__ import annotations

from typing import Any

from agiflow_lab.db.database import Conn


async def insert(conn: Conn, slug: str, name: str, description: str, created_by: str) -> dict[str, Any] | None:
    """Returns the new row, or None when the slug is taken."""
    cur = await conn.execute(
        """INSERT INTO control.projects (slug, name, description, created_by) VALUES (%s, %s, %s, %s)
           ON CONFLICT (slug) DO NOTHING
           RETURNING id, slug, name, description, created_by, created_at, trace_retention_days""",
        (slug, name, description, created_by),
    )
    return await cur.fetchone()


async def by_slug(conn: Conn, slug: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        """SELECT id, slug, name, description, created_by, created_at, trace_retention_days FROM control.projects
            WHERE slug = %s AND archived_at IS NULL""",
        (slug,),
    )
    return await cur.fetchone()


async def by_slugs(conn: Conn, slugs: list[str]) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT id, slug, name, description, created_by, created_at, trace_retention_days FROM control.projects
            WHERE slug = ANY(%s) AND archived_at IS NULL ORDER BY slug""",
        (slugs,),
    )
    return await cur.fetchall()


async def note_user(conn: Conn, name: str) -> None:
    await conn.execute("INSERT INTO control.known_users (name) VALUES (%s) ON CONFLICT DO NOTHING", (name,))


async def known_users(conn: Conn, names: list[str]) -> set[str]:
    cur = await conn.execute("SELECT name FROM control.known_users WHERE name = ANY(%s)", (names,))
    return {row["name"] for row in await cur.fetchall()}


async def update(conn: Conn, slug: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    """Set the given columns (names from ``ProjectUpdate``'s fields, never from a client); returns the row."""
    columns = ", ".join(f"{name} = %s" for name in changes)
    cur = await conn.execute(
        f"""UPDATE control.projects SET {columns} WHERE slug = %s AND archived_at IS NULL
            RETURNING id, slug, name, description, created_by, created_at, trace_retention_days""",  # noqa: S608
        (*changes.values(), slug),
    )
    return await cur.fetchone()


async def trace_retentions(conn: Conn) -> dict[int, int | None]:
    """Every project's trace retention in days (None: the deployment's default), archived ones included."""
    cur = await conn.execute("SELECT id, trace_retention_days FROM control.projects")
    return {row["id"]: row["trace_retention_days"] for row in await cur.fetchall()}
