"""The evaluation engine: runs every item of a pinned dataset version through the model and the
evaluators, streaming results into ``analytics.eval_results``.

It runs inside the built-in ``evaluate`` notebook on a worker (so the run is an ordinary job: queued,
limited, cancellable, retried on another worker, with the executed notebook as its report). Shape:

    feeder (pages of items, skipping finished ones) → queue → N item tasks → queue → writer (batches)

Both queues are bounded, so memory stays flat whatever the dataset size. The kernel runs user code
(``python`` evaluators), so the engine holds no database URL, secret key or model key: it reads and
writes through a :class:`RunStore` and calls models through ``complete``, both the worker's job API
(``agiflow_lab_workers.job_api``). The worker inserts a batch of results and the run's progress event in
one transaction, so the progress a client sees never runs ahead of the results it can read. A retried job (its worker died) starts the same pipeline again and
the feeder skips items that already have a result: finished items are never redone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agiflow_lab.errors import AgiflowError
from agiflow_lab.evals.evaluators.base import Case, Evaluator
from agiflow_lab.evals.wire import ItemsPage, Progress, Totals
from agiflow_lab.prompts.template import Template, render
from agiflow_lab.providers.base import Completion, CompletionRequest, ProviderError
from agiflow_lab.providers.prices import PriceBook

log = logging.getLogger(__name__)

PAGE_SIZE = 500
WRITE_BATCH = 200
WRITE_EVERY_SECONDS = 0.2
PROGRESS_EVERY_SECONDS = 0.5

Complete = Callable[[CompletionRequest], Awaitable[Completion]]


class RunStore(Protocol):
    """Where the engine reads its items and writes its results. In a job this is the worker's job API
    (the kernel holds no database credentials); the worker implements it on the database."""

    async def totals(self) -> Totals: ...

    async def pending_items(self, after: int, limit: int) -> ItemsPage: ...

    async def write(self, results: list[dict[str, Any]], progress: Progress | None) -> None: ...


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    project: str
    items_total: int
    prompt_type: str
    template: Template
    model: str
    params: dict[str, Any]
    concurrency: int


@dataclass
class EngineStats:
    items_total: int
    already_done: int = 0
    processed: int = 0
    passed: int = 0
    errors: int = 0
    seconds: float = 0.0
    peak_in_flight: int = 0

    @property
    def items_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0


@dataclass
class _Progress:
    done: int
    passed: int = 0
    errors: int = 0
    sent_at: float = field(default=0.0)


class Engine:
    def __init__(
        self, store: RunStore, plan: RunPlan, complete: Complete, evaluators: list[Evaluator], prices: PriceBook,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:  # fmt: skip
        """``complete`` is one model call with its retries already applied (the worker retries)."""
        self.store = store
        self.plan = plan
        self.complete = complete
        self.evaluators = evaluators
        self.prices = prices
        self.on_progress = on_progress
        self._in_flight = 0

    async def run(self) -> EngineStats:
        plan = self.plan
        stats = EngineStats(plan.items_total)
        totals = await self.store.totals()  # a resumed run counts what is already there
        stats.already_done = totals.done
        progress = _Progress(done=totals.done, passed=totals.passed, errors=totals.errors)
        items: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(plan.concurrency * 2)
        results: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(WRITE_BATCH * 4)
        started = time.perf_counter()
        writer = asyncio.create_task(self._write(results, progress, stats), name="eval-writer")
        workers = [asyncio.create_task(self._work(items, results, stats)) for _ in range(plan.concurrency)]
        feeding = asyncio.create_task(self._feed_all(items, results, workers), name="eval-feeder")
        try:
            # Whichever fails first ends the run. A writer whose batch the store refused must not be waited
            # for at the end: the items would fill the results queue behind it and wait there forever.
            done, _ = await asyncio.wait({feeding, writer}, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
            await feeding
            await writer
        except BaseException:
            for task in (feeding, *workers, writer):
                task.cancel()
            await asyncio.gather(feeding, *workers, writer, return_exceptions=True)
            raise
        stats.seconds = time.perf_counter() - started
        return stats

    async def _feed_all(
        self, items: asyncio.Queue[dict[str, Any] | None], results: asyncio.Queue[dict[str, Any] | None],
        workers: list[asyncio.Task[None]],
    ) -> None:  # fmt: skip
        """Every item to the workers, then the end to the writer once the workers are done."""
        await self._feed(items)
        for _ in workers:
            await items.put(None)
        await asyncio.gather(*workers)
        await results.put(None)

    async def _feed(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        after: int | None = 0
        while after is not None:
            page = await self.store.pending_items(after, PAGE_SIZE)
            for item in page.items:
                await queue.put(item)
            after = page.next_after

    async def _work(
        self, items: asyncio.Queue[dict[str, Any] | None], results: asyncio.Queue[dict[str, Any] | None],
        stats: EngineStats,
    ) -> None:  # fmt: skip
        while (item := await items.get()) is not None:
            self._in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, self._in_flight)
            try:
                await results.put(await self.evaluate_item(item))
            finally:
                self._in_flight -= 1

    async def evaluate_item(self, item: dict[str, Any]) -> dict[str, Any]:
        """One item end to end; every failure becomes part of the row, never an exception."""
        plan = self.plan
        variables = item["input"] if isinstance(item["input"], dict) else {"input": item["input"]}
        row: dict[str, Any] = {
            "item_id": item["item_id"], "ordinal": item["ordinal"], "input": item["input"],
            "expected": item.get("expected"), "rendered": None, "output": None, "error": None, "latency_ms": None,
            "tokens_in": None, "tokens_out": None, "cost": None, "attempts": 0, "scores": {}, "score": None,
            "passed": False,
        }  # fmt: skip
        try:
            messages = _messages(plan.prompt_type, render(plan.template, variables, strict=False))
        except AgiflowError as exc:
            row["error"] = f"rendering failed: {exc}"
            return row
        row["rendered"] = messages
        request = CompletionRequest(messages=messages, model=plan.model, params=plan.params)
        try:
            completion: Completion = await self.complete(request)
        except ProviderError as exc:
            row["error"] = f"model call failed: {exc}"
            row["attempts"] = exc.attempts
            return row
        row.update(
            output=completion.text, latency_ms=completion.latency_ms, tokens_in=completion.tokens_in,
            tokens_out=completion.tokens_out, attempts=completion.attempts,
            cost=self.prices.cost(completion.model or plan.model, completion.tokens_in, completion.tokens_out),
        )  # fmt: skip
        case = Case(
            output=completion.text, expected=item.get("expected"), input=variables,
            metadata=item.get("metadata") or {}, rendered="\n\n".join(m["content"] for m in messages),
        )  # fmt: skip
        scores = await asyncio.gather(*(evaluator.score(case) for evaluator in self.evaluators))
        row["scores"] = {
            s.evaluator: {"score": s.score, "passed": s.passed, "explanation": s.explanation, "error": s.error}
            for s in scores
        }
        numbers = [s.score for s in scores if s.score is not None]
        row["score"] = sum(numbers) / len(numbers) if numbers else None
        row["passed"] = all(s.passed is True for s in scores)
        return row

    async def _write(
        self, results: asyncio.Queue[dict[str, Any] | None], progress: _Progress, stats: EngineStats
    ) -> None:
        finished = False
        while not finished:
            batch: list[dict[str, Any]] = []
            deadline = time.monotonic() + WRITE_EVERY_SECONDS
            while len(batch) < WRITE_BATCH:
                timeout = deadline - time.monotonic()
                try:
                    row = await (asyncio.wait_for(results.get(), timeout) if batch else results.get())
                except TimeoutError:
                    break
                if row is None:
                    finished = True
                    break
                batch.append(row)
            await self._commit(batch, progress, stats, final=finished)

    async def _commit(self, batch: list[dict[str, Any]], progress: _Progress, stats: EngineStats, final: bool) -> None:
        now = time.monotonic()
        progress.done += len(batch)
        progress.passed += sum(1 for row in batch if row["passed"])
        progress.errors += sum(1 for row in batch if row["error"])
        stats.processed += len(batch)
        stats.passed += sum(1 for row in batch if row["passed"])
        stats.errors += sum(1 for row in batch if row["error"])
        report = final or now - progress.sent_at >= PROGRESS_EVERY_SECONDS
        if not batch and not report:
            return
        if batch or report:
            await self.store.write(
                batch, Progress(done=progress.done, passed=progress.passed, errors=progress.errors) if report else None
            )
        if report:
            progress.sent_at = now
            if self.on_progress is not None:
                self.on_progress(progress.done, self.plan.items_total)


def _messages(prompt_type: str, rendered: Template) -> list[dict[str, str]]:
    if isinstance(rendered, str):
        return [{"role": "user", "content": rendered}]
    return [{"role": m["role"], "content": m["content"]} for m in rendered]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


ProgressCallback = Callable[[int, int], Awaitable[None]]
