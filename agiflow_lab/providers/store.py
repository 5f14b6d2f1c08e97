"""SQL for model connections and price overrides. Every statement binds its parameters.

Reads for the API never select ``secret`` or ``headers_secret``: only ``secret IS NOT NULL``. The encrypted
key and headers leave the database in one place, ``secret_of``, which the service calls when it builds a
client (and ``plaintext_headers``, which finds rows written before headers were encrypted).
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from agiflow_lab.db.database import Conn

PUBLIC = """
    SELECT id, name, kind, base_url, default_model, description, options, secret IS NOT NULL AS has_api_key,
           created_by, created_at, updated_at
      FROM control.model_connections"""


async def insert(
    conn: Conn,
    project_id: int,
    *,
    name: str,
    kind: str,
    base_url: str | None,
    default_model: str | None,
    description: str,
    options: dict[str, Any],
    secret: bytes | None,
    headers_secret: bytes | None,
    by: str,
) -> int | None:
    cur = await conn.execute(
        """INSERT INTO control.model_connections
               (project_id, name, kind, base_url, default_model, description, options, secret, headers_secret,
                created_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (project_id, name) DO NOTHING RETURNING id""",
        (project_id, name, kind, base_url, default_model, description, Jsonb(options), secret, headers_secret, by),
    )
    row = await cur.fetchone()
    return None if row is None else int(row["id"])


async def get(conn: Conn, project_id: int, name: str, *, lock: bool = False) -> dict[str, Any] | None:
    cur = await conn.execute(
        PUBLIC + " WHERE project_id = %s AND name = %s" + (" FOR UPDATE" if lock else ""), (project_id, name)
    )
    return await cur.fetchone()


async def list_all(conn: Conn, project_id: int) -> list[dict[str, Any]]:
    cur = await conn.execute(PUBLIC + " WHERE project_id = %s ORDER BY name", (project_id,))
    return await cur.fetchall()


async def update(
    conn: Conn,
    connection_id: int,
    *,
    base_url: str | None,
    default_model: str | None,
    description: str,
    options: dict[str, Any],
) -> None:
    await conn.execute(
        """UPDATE control.model_connections
              SET base_url = %s, default_model = %s, description = %s, options = %s, updated_at = now()
            WHERE id = %s""",
        (base_url, default_model, description, Jsonb(options), connection_id),
    )


async def set_secret(conn: Conn, connection_id: int, secret: bytes | None) -> None:
    await conn.execute(
        "UPDATE control.model_connections SET secret = %s, updated_at = now() WHERE id = %s", (secret, connection_id)
    )


async def set_headers(conn: Conn, connection_id: int, options: dict[str, Any], headers_secret: bytes | None) -> None:
    await conn.execute(
        """UPDATE control.model_connections SET options = %s, headers_secret = %s, updated_at = now()
            WHERE id = %s""",
        (Jsonb(options), headers_secret, connection_id),
    )


async def secret_of(conn: Conn, project_id: int, name: str) -> dict[str, Any] | None:
    """The one read of the encrypted key and headers, with what is needed to build a client."""
    cur = await conn.execute(
        """SELECT id, name, kind, base_url, default_model, options, secret, headers_secret
             FROM control.model_connections WHERE project_id = %s AND name = %s""",
        (project_id, name),
    )
    return await cur.fetchone()


async def plaintext_headers(conn: Conn) -> list[dict[str, Any]]:
    """Connections saved before header values were encrypted (they sit in ``options.headers``), locked."""
    cur = await conn.execute(
        """SELECT id, options FROM control.model_connections WHERE options ? 'headers' ORDER BY id FOR UPDATE"""
    )
    return await cur.fetchall()


async def delete(conn: Conn, connection_id: int) -> None:
    await conn.execute("DELETE FROM control.model_connections WHERE id = %s", (connection_id,))


# --- prices --------------------------------------------------------------------------------------


async def prices(conn: Conn, project_id: int) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT model, input_per_million, output_per_million FROM control.model_prices
            WHERE project_id = %s ORDER BY model""",
        (project_id,),
    )
    return await cur.fetchall()


async def price(conn: Conn, project_id: int, model: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        """SELECT model, input_per_million, output_per_million FROM control.model_prices
            WHERE project_id = %s AND model = %s""",
        (project_id, model),
    )
    return await cur.fetchone()


async def set_price(conn: Conn, project_id: int, model: str, input_pm: float, output_pm: float, by: str) -> None:
    await conn.execute(
        """INSERT INTO control.model_prices (project_id, model, input_per_million, output_per_million, updated_by)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (project_id, model) DO UPDATE
              SET input_per_million = excluded.input_per_million, output_per_million = excluded.output_per_million,
                  updated_by = excluded.updated_by, updated_at = now()""",
        (project_id, model, input_pm, output_pm, by),
    )


async def delete_price(conn: Conn, project_id: int, model: str) -> bool:
    cur = await conn.execute(
        "DELETE FROM control.model_prices WHERE project_id = %s AND model = %s", (project_id, model)
    )
    return cur.rowcount > 0
