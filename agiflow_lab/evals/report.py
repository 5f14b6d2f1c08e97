"""The executed evaluation notebook as a readable report: summary tables, score and latency charts,
and the worst items. Distributions are bucketed in the database, so a 100k-item report is as light as
a 100-item one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agiflow_lab.evals.charts import Chart, histogram, side_by_side
from agiflow_lab.evals.models import RunAggregates

if TYPE_CHECKING:
    import pandas as pd

    from agiflow_lab.db.database import Database

SCORE_BUCKETS = 10
LATENCY_BUCKETS = 20
WORST = 10


@dataclass
class Report:
    run: dict[str, Any]
    aggregates: RunAggregates
    score_histograms: dict[str, list[int]]
    latency_edges: tuple[float, float]
    latency_histogram: list[int]
    worst: list[dict[str, Any]]

    @classmethod
    async def load(cls, db: Database, run_id: str) -> Report:
        """Read in the worker (the kernel gets the result through the job API, so it never imports psycopg)."""
        from agiflow_lab.evals import store
        from agiflow_lab.evals.aggregates import aggregates

        async with db.connection() as conn:
            run = await store.get_run(conn, run_id)
            assert run is not None, f"no evaluation run {run_id}"
            agg = await aggregates(conn, run_id, run["items_total"], run["evaluators"])
            histograms = {}
            for spec in run["evaluators"]:
                rows = await store.histogram(conn, run_id, "score", low=0.0, high=1.0 + 1e-9,
                                             buckets=SCORE_BUCKETS, evaluator=spec["name"])  # fmt: skip
                histograms[spec["name"]] = _counts(rows, SCORE_BUCKETS)
            high = max(agg.latency_p95_ms or 0.0, 1.0) * 1.5
            latency = _counts(
                await store.histogram(conn, run_id, "latency_ms", low=0.0, high=high, buckets=LATENCY_BUCKETS),
                LATENCY_BUCKETS,
            )
            worst = await store.worst_results(conn, run_id, WORST)
        return cls(run, agg, histograms, (0.0, high), latency, worst)

    def summary(self) -> pd.DataFrame:
        import pandas as pd

        a, run = self.aggregates, self.run
        builtin = (
            " (built-in echo: returns the rendered prompt, no model called)" if run["connection_kind"] == "echo" else ""
        )
        rows = {
            "run": run["name"],
            "prompt": f"{run['prompt_name']} v{run['prompt_version']} ({run['prompt_ref']})",
            "model": f"{run['model']} via {run['connection_name']}{builtin}",
            "dataset": f"{run['dataset_name']} v{run['dataset_version']}",
            "items": f"{a.items_done} of {a.items_total}",
            "pass rate": _pct(a.pass_rate),
            "mean score": _num(a.mean_score),
            "model errors": a.errors,
            "evaluator errors": a.evaluator_errors,
            "latency p50 / p95": f"{_num(a.latency_p50_ms, 0)} / {_num(a.latency_p95_ms, 0)} ms",
            "tokens in / out": f"{a.tokens_in:,} / {a.tokens_out:,}",
            "cost": "unpriced" if a.cost is None and a.unpriced_items else _usd(a.cost),
        }
        if run.get("output_dataset"):
            version = run.get("output_version")
            rows["outputs"] = (
                f"{run['output_dataset']} v{version}" if version else f"{run['output_dataset']} (not written)"
            )
        return pd.DataFrame({"": list(rows.values())}, index=list(rows))

    def evaluators(self) -> pd.DataFrame:
        import pandas as pd

        if not self.aggregates.evaluators:  # a batch inference scores nothing
            return pd.DataFrame(columns=["type", "threshold", "pass rate", "mean score", "scored", "errors"])
        return pd.DataFrame([
            {"evaluator": e.name, "type": e.type, "threshold": e.threshold, "pass rate": _pct(e.pass_rate),
             "mean score": _num(e.mean_score), "scored": e.scored, "errors": e.errors}
            for e in self.aggregates.evaluators
        ]).set_index("evaluator")  # fmt: skip

    def score_chart(self) -> Chart | None:
        """None (nothing shown) for a run without evaluators."""
        if not self.score_histograms:
            return None
        return side_by_side([
            histogram(counts, 0.0, 1.0, title=f"{name}: score distribution", x_label="score")
            for name, counts in self.score_histograms.items()
        ])  # fmt: skip

    def latency_chart(self) -> Chart:
        low, high = self.latency_edges
        markers = [(label, value) for label, value in (("p50", self.aggregates.latency_p50_ms),
                                                       ("p95", self.aggregates.latency_p95_ms)) if value is not None]  # fmt: skip
        return histogram(self.latency_histogram, low, high, title="Latency per item (successful model calls)",
                         x_label="ms", markers=markers)  # fmt: skip

    def worst_items(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for r in self.worst:
            rows.append({
                "item": r["item_id"], "score": _num(r["score"]), "passed": r["passed"],
                "output": _short(r["output"]), "expected": _short(r["expected"]),
                "why": _short(r["error"] or "; ".join(f"{k}: {v.get('error') or v.get('explanation')}"
                                                     for k, v in r["scores"].items() if not v.get("passed"))),
                "latency ms": _num(r["latency_ms"], 0),
            })  # fmt: skip
        return pd.DataFrame(rows).set_index("item") if rows else pd.DataFrame()

    def result(self) -> dict[str, Any]:
        """What the job returns: the run id and its aggregates (JSON)."""
        return {"run_id": str(self.run["id"]), **self.aggregates.model_dump(mode="json")}


def _counts(rows: list[dict[str, Any]], buckets: int) -> list[int]:
    counts = [0] * buckets
    for row in rows:
        counts[min(max(int(row["bucket"]), 1), buckets) - 1] += int(row["n"])
    return counts


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:,.4f}"


def _short(value: Any, limit: int = 80) -> str:
    text = "" if value is None else value if isinstance(value, str) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
