"""SQL for the prompt registry. Every statement binds its parameters."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from agiflow_lab.db.database import Conn

SUMMARY = """
    SELECT p.id, p.name, p.type, p.description, p.tags, p.latest_version, p.created_by, p.created_at,
           p.updated_at, p.archived_at IS NOT NULL AS archived,
           coalesce((SELECT jsonb_object_agg(l.label, l.version) FROM control.prompt_labels l
                      WHERE l.prompt_id = p.id), '{}'::jsonb) AS labels
      FROM control.prompts p"""

VERSION = """
    SELECT p.name, p.type, p.archived_at IS NOT NULL AS archived, v.version, v.template, v.variables, v.config,
           v.commit_message, v.created_by, v.created_at,
           coalesce((SELECT array_agg(l.label ORDER BY l.label) FROM control.prompt_labels l
                      WHERE l.prompt_id = p.id AND l.version = v.version), '{}') AS labels
      FROM control.prompts p JOIN control.prompt_versions v ON v.prompt_id = p.id"""


async def insert_prompt(
    conn: Conn, project_id: int, name: str, type_: str, description: str, tags: list[str], by: str
) -> int | None:
    cur = await conn.execute(
        """INSERT INTO control.prompts (project_id, name, type, description, tags, created_by)
           VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (project_id, name) DO NOTHING RETURNING id""",
        (project_id, name, type_, description, tags, by),
    )
    row = await cur.fetchone()
    return None if row is None else int(row["id"])


async def lock_prompt(conn: Conn, project_id: int, name: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        """SELECT id, type, latest_version, archived_at IS NOT NULL AS archived FROM control.prompts
            WHERE project_id = %s AND name = %s FOR UPDATE""",
        (project_id, name),
    )
    return await cur.fetchone()


async def insert_version(
    conn: Conn,
    prompt_id: int,
    template: Any,
    variables: list[str],
    config: dict[str, Any],
    message: str,
    by: str,
) -> int:
    """Numbers versions without gaps: the row lock on the prompt serialises concurrent writers."""
    cur = await conn.execute(
        """UPDATE control.prompts SET latest_version = latest_version + 1, updated_at = now()
            WHERE id = %s RETURNING latest_version""",
        (prompt_id,),
    )
    row = await cur.fetchone()
    assert row is not None
    version = int(row["latest_version"])
    await conn.execute(
        """INSERT INTO control.prompt_versions (prompt_id, version, template, variables, config, commit_message,
                                                created_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (prompt_id, version, Jsonb(template), variables, Jsonb(config), message, by),
    )
    return version


async def label_version(conn: Conn, prompt_id: int, label: str) -> int | None:
    cur = await conn.execute(
        "SELECT version FROM control.prompt_labels WHERE prompt_id = %s AND label = %s", (prompt_id, label)
    )
    row = await cur.fetchone()
    return None if row is None else int(row["version"])


async def version_exists(conn: Conn, prompt_id: int, version: int) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM control.prompt_versions WHERE prompt_id = %s AND version = %s", (prompt_id, version)
    )
    return await cur.fetchone() is not None


async def set_label(conn: Conn, prompt_id: int, label: str, version: int | None, by: str) -> int | None:
    """Point (or with version None, remove) a label and log the move; returns the previous version."""
    previous = await label_version(conn, prompt_id, label)
    if version is None:
        await conn.execute("DELETE FROM control.prompt_labels WHERE prompt_id = %s AND label = %s", (prompt_id, label))
    else:
        await conn.execute(
            """INSERT INTO control.prompt_labels (prompt_id, label, version, updated_by) VALUES (%s, %s, %s, %s)
               ON CONFLICT (prompt_id, label)
               DO UPDATE SET version = excluded.version, updated_by = excluded.updated_by, updated_at = now()""",
            (prompt_id, label, version, by),
        )
    await conn.execute(
        """INSERT INTO control.prompt_label_history (prompt_id, label, from_version, to_version, moved_by)
           VALUES (%s, %s, %s, %s, %s)""",
        (prompt_id, label, previous, version, by),
    )
    await conn.execute("UPDATE control.prompts SET updated_at = now() WHERE id = %s", (prompt_id,))
    return previous


async def label_history(conn: Conn, prompt_id: int, label: str | None) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT label, from_version, to_version, moved_by, moved_at FROM control.prompt_label_history
            WHERE prompt_id = %s AND (%s::text IS NULL OR label = %s) ORDER BY id DESC""",
        (prompt_id, label, label),
    )
    return await cur.fetchall()


async def get_version(
    conn: Conn, project_id: int, name: str, version: int | None, label: str | None
) -> dict[str, Any] | None:
    """One version, by number, or by label (``latest`` follows the newest version)."""
    cur = await conn.execute(
        VERSION
        + """ WHERE p.project_id = %s AND p.name = %s AND v.version = CASE
                  WHEN %s::bigint IS NOT NULL THEN %s::bigint
                  WHEN %s = 'latest' THEN p.latest_version
                  ELSE (SELECT l.version FROM control.prompt_labels l WHERE l.prompt_id = p.id AND l.label = %s)
              END""",
        (project_id, name, version, version, label, label),
    )
    return await cur.fetchone()


async def list_versions(conn: Conn, prompt_id: int, before: int | None, limit: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        VERSION + " WHERE p.id = %s AND (%s::bigint IS NULL OR v.version < %s) ORDER BY v.version DESC LIMIT %s",
        (prompt_id, before, before, limit),
    )
    return await cur.fetchall()


async def summary(conn: Conn, project_id: int, name: str) -> dict[str, Any] | None:
    cur = await conn.execute(SUMMARY + " WHERE p.project_id = %s AND p.name = %s", (project_id, name))
    return await cur.fetchone()


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(
    conn: Conn,
    project_id: int,
    *,
    text: str | None,
    tag: str | None,
    include_archived: bool,
    after_name: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    pattern = None if not text else _like(text)
    cur = await conn.execute(
        SUMMARY
        + """ WHERE p.project_id = %s
                AND (%s OR p.archived_at IS NULL)
                AND (%s::text IS NULL OR p.name ILIKE %s OR p.description ILIKE %s
                     OR EXISTS (SELECT 1 FROM unnest(p.tags) t WHERE t ILIKE %s))
                AND (%s::text IS NULL OR %s = ANY(p.tags))
                AND (%s::text IS NULL OR p.name > %s)
              ORDER BY p.name LIMIT %s""",
        (
            project_id,
            include_archived,
            pattern,
            pattern,
            pattern,
            pattern,
            tag,
            tag,
            after_name,
            after_name,
            limit,
        ),
    )
    return await cur.fetchall()


async def set_archived(conn: Conn, prompt_id: int, archived: bool) -> None:
    await conn.execute(
        """UPDATE control.prompts SET archived_at = CASE WHEN %s THEN coalesce(archived_at, now()) END,
                                      updated_at = now() WHERE id = %s""",
        (archived, prompt_id),
    )


async def prompt_id(conn: Conn, project_id: int, name: str) -> int | None:
    cur = await conn.execute("SELECT id FROM control.prompts WHERE project_id = %s AND name = %s", (project_id, name))
    row = await cur.fetchone()
    return None if row is None else int(row["id"])
