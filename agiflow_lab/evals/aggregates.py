"""Run aggregates, computed in the database from the results rows so they are right at any moment of
a run (live) and cost the same for 100 or 100k items. A run without evaluators (batch inference) judged
nothing: its pass rate is null, and ``passed`` counts the items whose model call succeeded."""

from __future__ import annotations

from typing import Any

from agiflow_lab.db.database import Conn
from agiflow_lab.evals import store
from agiflow_lab.evals.models import EvaluatorAggregate, RunAggregates


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


async def aggregates(conn: Conn, run_id: str, items_total: int, evaluators: list[dict[str, Any]]) -> RunAggregates:
    totals = await store.run_totals(conn, run_id)
    per_evaluator = {row["name"]: row for row in await store.evaluator_totals(conn, run_id)}
    done = int(totals["done"])
    listed = []
    for spec in evaluators:
        row = per_evaluator.get(spec["name"], {})
        passed = int(row.get("passed") or 0)
        listed.append(EvaluatorAggregate(
            name=spec["name"], type=spec["type"], threshold=spec["threshold"], scored=int(row.get("scored") or 0),
            passed=passed, pass_rate=_ratio(passed, done), mean_score=row.get("mean_score"),
            errors=int(row.get("errors") or 0),
        ))  # fmt: skip
    unpriced = int(totals["unpriced"])
    pass_rate = _ratio(int(totals["passed"]), done) if evaluators else None
    return RunAggregates(
        items_total=items_total, items_done=done, passed=int(totals["passed"]),
        pass_rate=pass_rate, mean_score=totals["mean_score"], errors=int(totals["errors"]),
        evaluator_errors=sum(e.errors for e in listed), latency_p50_ms=totals["p50"], latency_p95_ms=totals["p95"],
        tokens_in=int(totals["tokens_in"]), tokens_out=int(totals["tokens_out"]),
        cost=None if unpriced else (totals["cost"] if totals["cost"] is not None else (0.0 if done else None)),
        unpriced_items=unpriced, evaluators=listed,
    )  # fmt: skip
