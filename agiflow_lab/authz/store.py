from __future__ import annotations

from agiflow_lab.authz.policy import ROLE_PERMISSIONS
from agiflow_lab.db.database import Conn

CHANNEL = "agiflow_policy"


async def seed_role_permissions(conn: Conn) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO control.casbin_rule (ptype, v0, v1, v2, v3) VALUES ('p', %s, %s, %s, %s)
               ON CONFLICT DO NOTHING""",
            ROLE_PERMISSIONS,
        )


async def all_rules(conn: Conn) -> list[tuple[str, list[str]]]:
    cur = await conn.execute("SELECT ptype, v0, v1, v2, v3 FROM control.casbin_rule ORDER BY id")
    rules = []
    for row in await cur.fetchall():
        values = [row["v0"], row["v1"], row["v2"], row["v3"]]
        rules.append((row["ptype"], values[:3] if row["ptype"] == "g" else values))
    return rules


async def role_of(conn: Conn, subject: str, project: str) -> str | None:
    cur = await conn.execute(
        "SELECT v1 FROM control.casbin_rule WHERE ptype = 'g' AND v0 = %s AND v2 = %s", (subject, project)
    )
    row = await cur.fetchone()
    return None if row is None else str(row["v1"])


async def set_role(conn: Conn, subject: str, project: str, role: str) -> str | None:
    """Replace the subject's role in the project; returns the previous role."""
    previous = await role_of(conn, subject, project)
    await conn.execute("DELETE FROM control.casbin_rule WHERE ptype = 'g' AND v0 = %s AND v2 = %s", (subject, project))
    await conn.execute(
        "INSERT INTO control.casbin_rule (ptype, v0, v1, v2) VALUES ('g', %s, %s, %s)",
        (subject, role, project),
    )
    await notify_changed(conn)
    return previous


async def remove_role(conn: Conn, subject: str, project: str) -> str | None:
    previous = await role_of(conn, subject, project)
    await conn.execute("DELETE FROM control.casbin_rule WHERE ptype = 'g' AND v0 = %s AND v2 = %s", (subject, project))
    await notify_changed(conn)
    return previous


async def members(conn: Conn, project: str) -> list[tuple[str, str]]:
    cur = await conn.execute(
        """SELECT v0, v1 FROM control.casbin_rule
            WHERE ptype = 'g' AND v2 = %s AND v0 NOT LIKE 'key:%%' ORDER BY v0""",
        (project,),
    )
    return [(row["v0"], row["v1"]) for row in await cur.fetchall()]


async def projects_of(conn: Conn, subject: str) -> dict[str, str]:
    cur = await conn.execute("SELECT v2, v1 FROM control.casbin_rule WHERE ptype = 'g' AND v0 = %s", (subject,))
    return {row["v2"]: row["v1"] for row in await cur.fetchall()}


async def notify_changed(conn: Conn) -> None:
    """Every server process reloads its enforcer when this transaction commits."""
    await conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
