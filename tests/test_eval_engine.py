"""The evaluation engine's pipeline on its own seam (``RunStore``), for what the end-to-end runs cannot
make happen on purpose: the store refusing a batch of results midway."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agiflow_lab.evals.engine import Engine, RunPlan
from agiflow_lab.evals.evaluators.registry import build_evaluator
from agiflow_lab.evals.evaluators.specs import EvaluatorSpecAdapter
from agiflow_lab.evals.wire import ItemsPage, Progress, Totals
from agiflow_lab.providers.base import Completion, CompletionRequest
from agiflow_lab.providers.prices import PriceBook

ITEMS = 3000  # more than the results queue holds (WRITE_BATCH * 4): a dead writer would leave items waiting on it


class RefusingStore:
    """Serves ``ITEMS`` items; refuses the second batch of results, as a job API whose database went away."""

    def __init__(self) -> None:
        self.batches = 0

    async def totals(self) -> Totals:
        return Totals(done=0, passed=0, errors=0)

    async def pending_items(self, after: int, limit: int) -> ItemsPage:
        items = [{"item_id": f"q{i}", "ordinal": i, "input": {"q": str(i)}, "expected": str(i)}
                 for i in range(after + 1, min(after + limit, ITEMS) + 1)]  # fmt: skip
        return ItemsPage(items=items, next_after=items[-1]["ordinal"] if after + limit < ITEMS else None)

    async def write(self, results: list[dict[str, Any]], progress: Progress | None) -> None:
        self.batches += 1
        if self.batches == 2:
            raise RuntimeError("job API POST /run/results: 500")


async def echo(request: CompletionRequest) -> Completion:
    await asyncio.sleep(0)
    return Completion(text=request.messages[-1]["content"], model=request.model, tokens_in=1, tokens_out=1,
                      latency_ms=0.1)  # fmt: skip


async def test_a_refused_results_batch_ends_the_run_with_its_error_instead_of_hanging() -> None:
    plan = RunPlan(run_id="r", project="p", items_total=ITEMS, prompt_type="text", template="{{q}}", model="m",
                   params={}, concurrency=8)  # fmt: skip
    evaluators = [build_evaluator(EvaluatorSpecAdapter.validate_python({"type": "exact_match"}))]
    store = RefusingStore()
    engine = Engine(store, plan, echo, evaluators, PriceBook())

    with pytest.raises(RuntimeError, match="500"):
        await asyncio.wait_for(engine.run(), timeout=30)  # before the fix: every item task blocked, forever
    assert store.batches == 2
