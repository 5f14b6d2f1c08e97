"""SQL for evaluation runs (control) and their results (analytics). Every statement binds its parameters."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from agiflow_lab.db.database import Conn

RUN = """
    SELECT r.*, p.slug AS project, j.state, j.started_at, j.finished_at, j.error
      FROM control.eval_runs r
      JOIN control.projects p ON p.id = r.project_id
      JOIN control.jobs j ON j.id = r.job_id"""


async def insert_run(conn: Conn, run: dict[str, Any]) -> None:
    columns = list(run)
    values = [Jsonb(v) if isinstance(v, dict | list) else v for v in run.values()]
    placeholders = ", ".join(["%s"] * len(columns))
    await conn.execute(
        f"INSERT INTO control.eval_runs ({', '.join(columns)}) VALUES ({placeholders})",  # names are ours, not input
        values,
    )


async def get_run(conn: Conn, run_id: str, project_id: int | None = None) -> dict[str, Any] | None:
    if project_id is None:
        cur = await conn.execute(RUN + " WHERE r.id = %s", (run_id,))
    else:
        cur = await conn.execute(RUN + " WHERE r.id = %s AND r.project_id = %s", (run_id, project_id))
    return await cur.fetchone()


async def keep_aggregates(conn: Conn, run_id: str, aggregates: dict[str, Any], finished_at: Any) -> None:
    await conn.execute(
        "UPDATE control.eval_runs SET aggregates = %s, aggregates_of = %s WHERE id = %s",
        (Jsonb(aggregates), finished_at, run_id),
    )


async def lock_output(conn: Conn, run_id: str) -> dict[str, Any] | None:
    """The run's output columns, its row locked until the caller's transaction ends: two attempts of one
    run writing its outputs at once take turns, and the second finds the first one's version."""
    cur = await conn.execute(
        "SELECT output_dataset, output_version FROM control.eval_runs WHERE id = %s FOR UPDATE", (run_id,)
    )
    return await cur.fetchone()


async def set_output_version(conn: Conn, run_id: str, version: int) -> None:
    await conn.execute("UPDATE control.eval_runs SET output_version = %s WHERE id = %s", (version, run_id))


async def run_of_job(conn: Conn, job_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(RUN + " WHERE r.job_id = %s", (job_id,))
    return await cur.fetchone()


async def search_runs(
    conn: Conn,
    project_id: int,
    *,
    dataset: str | None,
    prompt: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        RUN + """ WHERE r.project_id = %(project)s
              AND (%(dataset)s::text IS NULL OR r.dataset_name = %(dataset)s)
              AND (%(prompt)s::text IS NULL OR r.prompt_name = %(prompt)s)
              AND (%(after_at)s::timestamptz IS NULL OR (r.created_at, r.id) < (%(after_at)s, %(after_id)s::uuid))
            ORDER BY r.created_at DESC, r.id DESC LIMIT %(limit)s""",
        {"project": project_id, "dataset": dataset, "prompt": prompt, "limit": limit,
         "after_at": after[0] if after else None, "after_id": after[1] if after else None},
    )  # fmt: skip
    return await cur.fetchall()


# --- results ------------------------------------------------------------------------------------

RESULT_COLUMNS = (
    "run_id", "item_id", "ordinal", "input", "expected", "rendered", "output", "error", "latency_ms", "tokens_in",
    "tokens_out", "cost", "attempts", "scores", "score", "passed",
)  # fmt: skip
_JSON_COLUMNS = {"input", "expected", "rendered", "scores"}


async def insert_results(conn: Conn, rows: Sequence[dict[str, Any]]) -> None:
    """Idempotent: an item written twice (a resumed run racing its predecessor) keeps the first result."""
    if not rows:
        return
    params = [[Jsonb(row[c]) if c in _JSON_COLUMNS else row[c] for c in RESULT_COLUMNS] for row in rows]
    async with conn.cursor() as cur:
        await cur.executemany(
            f"INSERT INTO analytics.eval_results ({', '.join(RESULT_COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(RESULT_COLUMNS))}) ON CONFLICT (run_id, item_id) DO NOTHING",
            params,
        )


async def finished_items(conn: Conn, run_id: str, item_ids: list[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT item_id FROM analytics.eval_results WHERE run_id = %s AND item_id = ANY(%s)", (run_id, item_ids)
    )
    return {row["item_id"] for row in await cur.fetchall()}


async def count_results(conn: Conn, run_id: str) -> int:
    cur = await conn.execute("SELECT count(*) AS n FROM analytics.eval_results WHERE run_id = %s", (run_id,))
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def results_page(
    conn: Conn, run_id: str, *, after: int | None, limit: int, failed_only: bool
) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT * FROM analytics.eval_results
            WHERE run_id = %(run)s AND (%(after)s::bigint IS NULL OR ordinal > %(after)s)
              AND (NOT %(failed)s OR NOT passed)
            ORDER BY ordinal LIMIT %(limit)s""",
        {"run": run_id, "after": after, "limit": limit, "failed": failed_only},
    )
    return await cur.fetchall()


async def worst_results(conn: Conn, run_id: str, limit: int) -> list[dict[str, Any]]:
    """Errors first, then the lowest mean score, then the slowest."""
    cur = await conn.execute(
        """SELECT * FROM analytics.eval_results WHERE run_id = %s
            ORDER BY (error IS NULL), passed, score ASC NULLS FIRST, latency_ms DESC NULLS LAST, ordinal
            LIMIT %s""",
        (run_id, limit),
    )
    return await cur.fetchall()


async def run_totals(conn: Conn, run_id: str) -> dict[str, Any]:
    cur = await conn.execute(
        """SELECT count(*) AS done,
                  count(*) FILTER (WHERE passed) AS passed,
                  count(*) FILTER (WHERE error IS NOT NULL) AS errors,
                  avg(score) AS mean_score,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
                  percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
                  coalesce(sum(tokens_in), 0) AS tokens_in,
                  coalesce(sum(tokens_out), 0) AS tokens_out,
                  sum(cost) AS cost,
                  count(*) FILTER (WHERE cost IS NULL AND error IS NULL) AS unpriced
             FROM analytics.eval_results WHERE run_id = %s""",
        (run_id,),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def evaluator_totals(conn: Conn, run_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        """SELECT s.key AS name,
                  count(*) FILTER (WHERE (s.value->>'score') IS NOT NULL) AS scored,
                  count(*) FILTER (WHERE (s.value->>'passed')::boolean) AS passed,
                  avg((s.value->>'score')::double precision) AS mean_score,
                  count(*) FILTER (WHERE s.value->>'error' IS NOT NULL) AS errors
             FROM analytics.eval_results r, jsonb_each(r.scores) s
            WHERE r.run_id = %s GROUP BY s.key""",
        (run_id,),
    )
    return await cur.fetchall()


async def histogram(
    conn: Conn, run_id: str, column: str, *, low: float, high: float, buckets: int, evaluator: str | None = None
) -> list[dict[str, Any]]:
    """Counts per bucket computed in the database, so a report over 100k items stays small in memory."""
    value = {"latency_ms": "latency_ms", "score": "(scores->%(evaluator)s->>'score')::double precision"}[column]
    cur = await conn.execute(
        f"""SELECT width_bucket(v, %(low)s, %(high)s, %(buckets)s) AS bucket, count(*) AS n
              FROM (SELECT {value} AS v FROM analytics.eval_results WHERE run_id = %(run)s) x
             WHERE v IS NOT NULL GROUP BY 1 ORDER BY 1""",
        {"run": run_id, "low": low, "high": high, "buckets": buckets, "evaluator": evaluator},
    )
    return await cur.fetchall()


# An item's change is its verdict's: regressed is pass → fail, improved is fail → pass. A score that moves
# while the verdict stays (0.05 → 0.14, failing both times) is not a change; it is reported beside it, as
# ``score_delta`` per item and ``score_up``/``score_down`` among the unchanged, so the counts add up to
# the items compared.
CHANGE = """
    CASE WHEN b.item_id IS NULL OR c.item_id IS NULL THEN 'missing'
         WHEN b.passed AND NOT c.passed THEN 'regressed'
         WHEN c.passed AND NOT b.passed THEN 'improved'
         ELSE 'unchanged' END"""
SCORE_DELTA = "c.score - b.score"  # null when either run has no score for the item
SCORE_EPSILON = 1e-9  # mean scores are floats: a difference below this is the same score
PAIR = """
      FROM (SELECT * FROM analytics.eval_results WHERE run_id = %(base)s) b
      FULL JOIN (SELECT * FROM analytics.eval_results WHERE run_id = %(last)s) c USING (item_id)"""


@dataclass(frozen=True)
class ChangeCounts:
    regressed: int = 0
    improved: int = 0
    unchanged: int = 0
    missing: int = 0
    score_up: int = 0  # unchanged verdict, higher score in the last run
    score_down: int = 0


async def change_counts(conn: Conn, base: str, last: str) -> ChangeCounts:
    cur = await conn.execute(
        f"""SELECT change, count(*) AS n,
                   count(*) FILTER (WHERE change = 'unchanged' AND delta > %(eps)s) AS up,
                   count(*) FILTER (WHERE change = 'unchanged' AND delta < -%(eps)s) AS down
              FROM (SELECT {CHANGE} AS change, {SCORE_DELTA} AS delta {PAIR}) x
             GROUP BY change""",
        {"base": base, "last": last, "eps": SCORE_EPSILON},
    )
    rows = {row["change"]: row for row in await cur.fetchall()}
    n = {change: int(row["n"]) for change, row in rows.items()}
    unchanged = rows.get("unchanged", {"up": 0, "down": 0})
    return ChangeCounts(
        regressed=n.get("regressed", 0), improved=n.get("improved", 0), unchanged=n.get("unchanged", 0),
        missing=n.get("missing", 0), score_up=int(unchanged["up"]), score_down=int(unchanged["down"]),
    )  # fmt: skip


async def changes_page(
    conn: Conn, base: str, last: str, *, change: str | None, after: int | None, limit: int
) -> list[dict[str, Any]]:
    """Items of the baseline/last pair with their change and score delta, in item order; ``change=None``
    means every item whose verdict changed (or that is missing from one run)."""
    cur = await conn.execute(
        f"""SELECT * FROM (
                SELECT item_id, coalesce(b.ordinal, c.ordinal) AS ordinal, {CHANGE} AS change,
                       {SCORE_DELTA} AS score_delta {PAIR}) x
             WHERE (%(change)s::text IS NULL AND change <> 'unchanged' OR change = %(change)s)
               AND (%(after)s::bigint IS NULL OR ordinal > %(after)s)
             ORDER BY ordinal LIMIT %(limit)s""",
        {"base": base, "last": last, "change": change, "after": after, "limit": limit},
    )
    return await cur.fetchall()


async def results_for(conn: Conn, run_ids: list[str], item_ids: list[str]) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT * FROM analytics.eval_results WHERE run_id = ANY(%s::uuid[]) AND item_id = ANY(%s)",
        (run_ids, item_ids),
    )
    return await cur.fetchall()
