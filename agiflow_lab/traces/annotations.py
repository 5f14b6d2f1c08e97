"""What people and programs add to traces after the fact: scores, and agiflow-sdk's late span updates.

Kept in Postgres next to the spans (``0010_scores.sql``) but apart from ``SpanStore``: these are small,
transactional writes one at a time, where the span store is built for batches. Ids are lowercase hex at
this edge and bytea inside, as in the span store.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import AwareDatetime

from agiflow_lab.core.paging import Cursor, Page, check_limit
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.traces.results import Bucket, ScoreSource, ScoreType, ScoreValue

# (created_at, id) of a page's last score, newest first.
SCORE_CURSOR = Cursor[tuple[datetime, uuid.UUID]](tuple[AwareDatetime, uuid.UUID])
_COLUMNS = """id, trace_id, trace_alias, span_id, name, data_type, value_number, value_text, source, comment,
    author, created_at"""


@dataclass(frozen=True, slots=True)
class ScoreRow:
    id: uuid.UUID
    trace_id: str | None
    trace_alias: str | None
    span_id: str | None
    name: str
    data_type: ScoreType
    value: ScoreValue
    source: ScoreSource
    comment: str | None
    author: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewScore:
    trace_id: str | None
    trace_alias: str | None
    span_id: str | None
    name: str
    value: ScoreValue
    source: ScoreSource
    comment: str | None
    author: str


def data_type(value: ScoreValue) -> ScoreType:
    if isinstance(value, bool):
        return "boolean"
    return "numeric" if isinstance(value, int | float) else "categorical"


def _stored(value: ScoreValue) -> tuple[float | None, str | None]:
    """(number, text) columns: a boolean is both, so its mean is a pass rate and it still reads back as one."""
    if isinstance(value, bool):
        return float(value), "true" if value else "false"
    if isinstance(value, int | float):
        return float(value), None
    return None, value


def _row(r: dict[str, Any]) -> ScoreRow:
    kind: ScoreType = r["data_type"]
    value: ScoreValue = (
        r["value_text"] == "true" if kind == "boolean" else r["value_number"] if kind == "numeric" else r["value_text"]
    )
    return ScoreRow(
        id=r["id"], trace_id=r["trace_id"].hex() if r["trace_id"] else None, trace_alias=r["trace_alias"],
        span_id=r["span_id"].hex() if r["span_id"] else None, name=r["name"], data_type=kind, value=value,
        source=r["source"], comment=r["comment"], author=r["author"], created_at=r["created_at"],
    )  # fmt: skip


def _id(hex_id: str | None) -> bytes | None:
    return bytes.fromhex(hex_id) if hex_id is not None else None


class AnnotationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_score(self, project_id: int, score: NewScore, *, replace: bool = False) -> ScoreRow:
        """Insert one score. ``replace``: first remove this author's earlier scores of the same name on the
        same target (agiflow-sdk's PATCH means "set", so saying it twice leaves one score)."""
        async with self.db.transaction() as conn:
            if replace:
                await conn.execute(
                    """DELETE FROM analytics.scores
                        WHERE project_id = %s AND name = %s AND author = %s AND source = %s
                          AND trace_id IS NOT DISTINCT FROM %s AND trace_alias IS NOT DISTINCT FROM %s
                          AND span_id IS NOT DISTINCT FROM %s""",
                    (project_id, score.name, score.author, score.source, _id(score.trace_id), score.trace_alias,
                     _id(score.span_id)),
                )  # fmt: skip
            (row,) = await insert_scores(conn, project_id, [score])
        return row

    async def bind_aliases(self, project_id: int, trace_id: str, aliases: Collection[str]) -> None:
        """Scores given to an alias of this trace now name the trace itself (kept: the alias)."""
        if aliases:
            async with self.db.connection() as conn:
                await conn.execute(
                    """UPDATE analytics.scores SET trace_id = %s
                        WHERE project_id = %s AND trace_id IS NULL AND trace_alias = ANY(%s)""",
                    (bytes.fromhex(trace_id), project_id, list(aliases)),
                )

    async def list_scores(
        self,
        project_id: int,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
        name: str | None = None,
        source: ScoreSource | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[ScoreRow]:
        check_limit(limit)
        where: list[str] = ["project_id = %s"]
        params: list[Any] = [project_id]
        for column, value in (("trace_id", _id(trace_id)), ("span_id", _id(span_id)), ("name", name),
                              ("source", source)):  # fmt: skip
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        after = SCORE_CURSOR.decode(cursor)
        if after is not None:
            where.append("(created_at, id) < (%s, %s)")
            params += [after[0], after[1]]
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"""SELECT {_COLUMNS} FROM analytics.scores WHERE {" AND ".join(where)}
                     ORDER BY created_at DESC, id DESC LIMIT %s""",  # noqa: S608 (constant columns and conditions)
                (*params, limit + 1),
            )
            rows = await cur.fetchall()
        return Page(
            items=[_row(r) for r in rows[:limit]],
            next_cursor=SCORE_CURSOR.next(rows, limit, lambda r: (r["created_at"], r["id"])),
        )

    async def delete_score(self, project_id: int, score_id: uuid.UUID) -> bool:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM analytics.scores WHERE project_id = %s AND id = %s", (project_id, score_id)
            )
            return cur.rowcount > 0

    async def score_means(
        self, project_id: int, *, start: datetime, end: datetime, bucket: Bucket
    ) -> dict[datetime, dict[str, float]]:
        """Mean of each numeric or boolean score per bucket of the time it was given."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                """SELECT date_trunc(%s, created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t, name,
                          avg(value_number) AS mean
                     FROM analytics.scores
                    WHERE project_id = %s AND created_at >= %s AND created_at < %s AND value_number IS NOT NULL
                    GROUP BY 1, 2""",
                (bucket, project_id, start, end),
            )
            means: dict[datetime, dict[str, float]] = {}
            for r in await cur.fetchall():
                means.setdefault(r["t"], {})[r["name"]] = float(r["mean"])
        return means

    async def purge_scores(self, project_id: int, before: datetime) -> int:
        """Scores given before ``before`` (retention: they go with the traces of that age)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM analytics.scores WHERE project_id = %s AND created_at < %s", (project_id, before)
            )
            return cur.rowcount

    # ------------------------------------------------------------ agiflow-sdk span updates

    async def add_span_update(self, project_id: int, span_ref: str, body: dict[str, Any], author: str) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "INSERT INTO analytics.span_updates (project_id, span_ref, body, author) VALUES (%s, %s, %s, %s)",
                (project_id, span_ref, Jsonb(body), author),
            )

    async def span_updates(self, project_id: int, refs: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The updates given to each of ``refs``, oldest first."""
        if not refs:
            return {}
        async with self.db.connection() as conn:
            cur = await conn.execute(
                """SELECT span_ref, body FROM analytics.span_updates
                    WHERE project_id = %s AND span_ref = ANY(%s) ORDER BY id""",
                (project_id, list(refs)),
            )
            updates: dict[str, list[dict[str, Any]]] = {}
            for r in await cur.fetchall():
                updates.setdefault(r["span_ref"], []).append(r["body"])
        return updates


async def insert_scores(conn: Conn, project_id: int, scores: Sequence[NewScore]) -> list[ScoreRow]:
    """Scores in the caller's transaction (an evaluation run writes its items' scores with their results)."""
    if not scores:
        return []  # executemany of nothing leaves no result to fetch
    rows = []
    for score in scores:
        number, text = _stored(score.value)
        rows.append((uuid.uuid4(), project_id, _id(score.trace_id), score.trace_alias, _id(score.span_id),
                     score.name, data_type(score.value), number, text, score.source, score.comment, score.author))  # fmt: skip
    async with conn.cursor() as cur:
        await cur.executemany(
            f"""INSERT INTO analytics.scores (id, project_id, trace_id, trace_alias, span_id, name, data_type,
                                              value_number, value_text, source, comment, author)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}""",  # noqa: S608
            rows,
            returning=True,
        )
        found = []
        while True:
            row = await cur.fetchone()
            if row is not None:
                found.append(_row(row))
            if not cur.nextset():
                break
    return found
