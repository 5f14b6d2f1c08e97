"""SQL for datasets. Every statement binds its parameters.

Items carry a validity range of versions; a write stages the incoming rows in a temporary table and
then closes and opens ranges with a handful of set-based statements, so a 100k-row upload costs a few
statements, not 100k round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agiflow_lab.datasets.importers import EncodedItem
from agiflow_lab.db.database import Conn

SUMMARY = """
    SELECT d.id, d.name, d.description, d.latest_version, d.created_by, d.created_at, d.updated_at,
           d.archived_at IS NOT NULL AS archived, coalesce(v.item_count, 0) AS item_count
      FROM control.datasets d
      LEFT JOIN control.dataset_versions v ON v.dataset_id = d.id AND v.version = d.latest_version"""

VERSION = """
    SELECT d.name, v.version, v.item_count, v.message, v.created_by, v.created_at
      FROM control.dataset_versions v JOIN control.datasets d ON d.id = v.dataset_id"""

ITEMS_OF_VERSION = """
    SELECT item_id, ordinal, input, expected, metadata FROM control.dataset_items
     WHERE dataset_id = %(dataset)s AND ordinal > %(after)s
       AND first_version <= %(version)s AND (last_version IS NULL OR last_version >= %(version)s)
     ORDER BY ordinal LIMIT %(limit)s"""


async def insert_dataset(conn: Conn, project_id: int, name: str, description: str, by: str) -> int | None:
    """The new dataset's id, or None when the name is taken in this project."""
    cur = await conn.execute(
        """INSERT INTO control.datasets (project_id, name, description, created_by) VALUES (%s, %s, %s, %s)
           ON CONFLICT (project_id, name) DO NOTHING RETURNING id""",
        (project_id, name, description, by),
    )
    row = await cur.fetchone()
    return None if row is None else int(row["id"])


async def find(conn: Conn, project_id: int, name: str, *, lock: bool = False) -> dict[str, Any] | None:
    """``id, latest_version, next_ordinal, archived``; ``lock`` serialises writers on the dataset row."""
    cur = await conn.execute(
        """SELECT id, latest_version, next_ordinal, archived_at IS NOT NULL AS archived FROM control.datasets
            WHERE project_id = %s AND name = %s"""
        + (" FOR UPDATE" if lock else ""),
        (project_id, name),
    )
    return await cur.fetchone()


async def summary(conn: Conn, project_id: int, name: str) -> dict[str, Any] | None:
    cur = await conn.execute(SUMMARY + " WHERE d.project_id = %s AND d.name = %s", (project_id, name))
    return await cur.fetchone()


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(
    conn: Conn, project_id: int, *, text: str | None, include_archived: bool, after_name: str | None, limit: int
) -> list[dict[str, Any]]:
    pattern = None if not text else _like(text)
    cur = await conn.execute(
        SUMMARY
        + """ WHERE d.project_id = %(project)s
                AND (%(archived)s OR d.archived_at IS NULL)
                AND (%(pattern)s::text IS NULL OR d.name ILIKE %(pattern)s OR d.description ILIKE %(pattern)s)
                AND (%(after)s::text IS NULL OR d.name > %(after)s)
              ORDER BY d.name LIMIT %(limit)s""",
        {"project": project_id, "archived": include_archived, "pattern": pattern, "after": after_name, "limit": limit},
    )
    return await cur.fetchall()


async def list_versions(conn: Conn, dataset_id: int, before: int | None, limit: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        VERSION
        + " WHERE v.dataset_id = %s AND (%s::bigint IS NULL OR v.version < %s) ORDER BY v.version DESC LIMIT %s",
        (dataset_id, before, before, limit),
    )
    return await cur.fetchall()


async def get_version(conn: Conn, dataset_id: int, version: int) -> dict[str, Any] | None:
    cur = await conn.execute(VERSION + " WHERE v.dataset_id = %s AND v.version = %s", (dataset_id, version))
    return await cur.fetchone()


async def items_page(
    conn: Conn, dataset_id: int, version: int, *, after_ordinal: int, limit: int
) -> list[dict[str, Any]]:
    """One page of a version's items in their stable order: ``item_id, ordinal, input, expected, metadata``.

    Keyset paging on ``ordinal`` (pass the last row's ordinal as ``after_ordinal``, 0 to start) walks the
    ``dataset_items_by_ordinal`` index, so the thousandth page costs what the first does.
    """
    cur = await conn.execute(
        ITEMS_OF_VERSION, {"dataset": dataset_id, "version": version, "after": after_ordinal, "limit": limit}
    )
    return await cur.fetchall()


# --- writing a version ----------------------------------------------------------------------------


async def create_stage(conn: Conn) -> None:
    """A per-transaction scratch table for the incoming rows; gone at commit or rollback."""
    await conn.execute(
        """CREATE TEMPORARY TABLE dataset_stage (
               row integer NOT NULL, item_id text PRIMARY KEY, input jsonb NOT NULL, expected jsonb,
               metadata jsonb NOT NULL) ON COMMIT DROP"""
    )


async def stage(conn: Conn, items: Sequence[EncodedItem]) -> None:
    if not items:
        return
    async with conn.cursor().copy("COPY dataset_stage (row, item_id, input, expected, metadata) FROM STDIN") as copy:
        for item in items:
            await copy.write_row((item.row, item.item_id, item.input, item.expected, item.metadata))


async def apply_stage(conn: Conn, dataset_id: int, version: int, next_ordinal: int, *, replace: bool) -> dict[str, int]:
    """Make the staged rows version ``version``; returns ``added, updated, removed, item_count``.

    Unchanged items keep their row; a changed item's row is closed at ``version - 1`` and a new one opened
    with the same ordinal; new items get ordinals after every earlier one, in upload order. The caller
    holds the dataset's row lock.
    """
    await conn.execute("ANALYZE dataset_stage")
    args = {"dataset": dataset_id, "version": version, "previous": version - 1, "next": next_ordinal}
    changed = await conn.execute(
        """UPDATE control.dataset_items i SET last_version = %(previous)s
             FROM dataset_stage s
            WHERE i.dataset_id = %(dataset)s AND i.last_version IS NULL AND i.item_id = s.item_id
              AND (i.input, i.expected, i.metadata) IS DISTINCT FROM (s.input, s.expected, s.metadata)""",
        args,
    )
    removed = 0
    if replace:
        cur = await conn.execute(
            """UPDATE control.dataset_items i SET last_version = %(previous)s
                WHERE i.dataset_id = %(dataset)s AND i.last_version IS NULL
                  AND NOT EXISTS (SELECT 1 FROM dataset_stage s WHERE s.item_id = i.item_id)""",
            args,
        )
        removed = cur.rowcount
    await conn.execute(
        """INSERT INTO control.dataset_items (dataset_id, item_id, ordinal, first_version, input, expected, metadata)
           SELECT %(dataset)s, s.item_id, i.ordinal, %(version)s, s.input, s.expected, s.metadata
             FROM dataset_stage s
             JOIN control.dataset_items i
               ON i.dataset_id = %(dataset)s AND i.item_id = s.item_id AND i.last_version = %(previous)s""",
        args,
    )
    added = await conn.execute(
        """INSERT INTO control.dataset_items (dataset_id, item_id, ordinal, first_version, input, expected, metadata)
           SELECT %(dataset)s, s.item_id, %(next)s + row_number() OVER (ORDER BY s.row) - 1, %(version)s,
                  s.input, s.expected, s.metadata
             FROM dataset_stage s
            WHERE NOT EXISTS (
                  SELECT 1 FROM control.dataset_items i
                   WHERE i.dataset_id = %(dataset)s AND i.item_id = s.item_id AND i.last_version IS NULL)""",
        args,
    )
    return {
        "added": added.rowcount,
        "updated": changed.rowcount,
        "removed": removed,
        "item_count": await live_count(conn, dataset_id),
    }


async def close_item(conn: Conn, dataset_id: int, item_id: str, version: int) -> bool:
    """End a live item's range before ``version``; False when there is no such live item."""
    cur = await conn.execute(
        """UPDATE control.dataset_items SET last_version = %s
            WHERE dataset_id = %s AND item_id = %s AND last_version IS NULL""",
        (version - 1, dataset_id, item_id),
    )
    return cur.rowcount > 0


async def live_count(conn: Conn, dataset_id: int) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM control.dataset_items WHERE dataset_id = %s AND last_version IS NULL", (dataset_id,)
    )
    row = await cur.fetchone()
    return 0 if row is None else int(row["n"])


async def insert_version(
    conn: Conn, dataset_id: int, version: int, item_count: int, added: int, message: str, by: str
) -> None:
    """Record the version and advance the dataset's counters (``added`` new ordinals were used)."""
    await conn.execute(
        """INSERT INTO control.dataset_versions (dataset_id, version, item_count, message, created_by)
           VALUES (%s, %s, %s, %s, %s)""",
        (dataset_id, version, item_count, message, by),
    )
    await conn.execute(
        """UPDATE control.datasets SET latest_version = %s, next_ordinal = next_ordinal + %s, updated_at = now()
            WHERE id = %s""",
        (version, added, dataset_id),
    )
