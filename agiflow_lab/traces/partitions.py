"""Daily partitions of ``analytics.spans``: made when a batch first needs a day, dropped whole by retention.

A partition is created as a plain table and then attached, rather than with ``CREATE TABLE ... PARTITION
OF``: the latter takes an ACCESS EXCLUSIVE lock on ``analytics.spans``, so the first span of a new day
would wait for every running trace query and stall every other loader behind it; ``ATTACH PARTITION``
only needs SHARE UPDATE EXCLUSIVE, which readers and writers do not conflict with. Creation runs in its
own short transaction before the batch's, under a transaction-level advisory lock, so concurrent loaders
(other workers, other processes) that need the same new day create it once and the rest find it.

Which days exist is cached per ``Partitions`` object (one per store, so per process). The cache can only
be wrong one way: a day another process's retention dropped. The loader then sees Postgres refuse the
row (no partition for it), calls ``forget`` and tries again.

Days are UTC. Only ``date`` objects become partition names, so a name is always ``spans_YYYYMMDD``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from psycopg import errors, sql

from agiflow_lab.db.database import Conn, Database

log = logging.getLogger(__name__)

SCHEMA = "analytics"
PARENT = "spans"
_NAME = re.compile(r"^spans_(\d{8})$")
# Any constant shared by every AGIFlow process; only partition DDL takes it (migrate.py has its own).
LOCK_KEY = 0x4A6F_6C61_6209
NS_PER_DAY = 86_400 * 1_000_000_000
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_of_ns(unix_ns: int) -> date:
    """The UTC day of a unix time in nanoseconds (what the partition of a span's start is)."""
    return date.fromordinal(EPOCH_ORDINAL + unix_ns // NS_PER_DAY)


def name_of(day: date) -> str:
    return f"{PARENT}_{day:%Y%m%d}"


def day_of_name(name: str) -> date | None:
    """The day a partition holds, or None for a table that is not one of ours."""
    match = _NAME.match(name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


class Partitions:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: set[date] = set()

    async def ensure(self, days: Iterable[date]) -> None:
        """Make sure each day has its partition; costs nothing for days this process has seen."""
        missing = sorted(set(days) - self._known)
        if not missing:
            return
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            existing = await self._existing(conn)
            for day in missing:
                if day not in existing:
                    await _create(conn, day)
        self._known.update(missing)

    def forget(self, days: Iterable[date]) -> None:
        self._known.difference_update(days)

    async def existing(self) -> list[date]:
        async with self.db.connection() as conn:
            return sorted(await self._existing(conn))

    async def drop_before(self, day: date, *, lock_timeout_ms: int = 5000) -> list[str]:
        """Drop every partition whose day is before ``day``; returns the dropped tables' names.

        Postgres needs ACCESS EXCLUSIVE on ``analytics.spans`` to drop a partition: the drop waits for
        running queries on any day, and loaders queue behind it while it waits. So each drop waits at
        most ``lock_timeout_ms``; a day it could not drop is left (and logged) for the next run. Each runs
        under the creators' lock, in its own transaction, so what was dropped stays dropped."""
        async with self.db.connection() as conn:
            old = sorted(d for d in await self._existing(conn) if d < day)
            dropped: list[date] = []
            for d in old:
                try:
                    async with conn.transaction():
                        await conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_timeout_ms}ms",))
                        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                        await conn.execute(
                            sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(SCHEMA, name_of(d)))
                        )
                except errors.LockNotAvailable:
                    log.warning("partition %s is in use: not dropped this time", name_of(d))
                    break
                dropped.append(d)
        self.forget(dropped)
        return [name_of(d) for d in dropped]

    async def _existing(self, conn: Conn) -> set[date]:
        cur = await conn.execute(
            """SELECT c.relname FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = %s::regclass""",
            (f"{SCHEMA}.{PARENT}",),
        )
        return {d for row in await cur.fetchall() if (d := day_of_name(row["relname"])) is not None}


async def _create(conn: Conn, day: date) -> None:
    table = sql.Identifier(SCHEMA, name_of(day))
    start, end = bounds(day)
    # A partition left detached by an earlier failure is impossible (create and attach share a
    # transaction), so IF NOT EXISTS only guards against a table of that name made by hand.
    await conn.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS INCLUDING STORAGE)").format(
            table, sql.Identifier(SCHEMA, PARENT)
        )
    )
    await conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(SCHEMA, PARENT), table, sql.Literal(start), sql.Literal(end)
        )
    )
