"""The evaluation engine: runs every item of a pinned dataset version through the model and the
evaluators, streaming results into ``analytics.eval_results``.

It runs inside the built-in ``evaluate`` notebook on a worker (so the run is an ordinary job: queued,
limited, cancellable, retried on another worker, with the executed notebook as its report). Shape:

    feeder (pages of items, skipping finished ones) → queue → N item tasks → queue → writer (batches)

Both queues are bounded, so memory stays flat whatever the dataset size. The writer inserts a batch of
results and the run's progress event in one transaction, so the progress a client sees never runs
ahead of the results it can read. A retried job (its worker died) starts the same pipeline again and
the feeder skips items that already have a result: finished items are never redone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agiflow_lab.bus import outbox
from agiflow_lab.bus.topics import JOB_EVENTS
from agiflow_lab.datasets import store as datasets_store
from agiflow_lab.db.database import Database
from agiflow_lab.errors import AgiflowError
from agiflow_lab.evals import store
from agiflow_lab.evals.evaluators.base import Case, Evaluator
from agiflow_lab.prompts.template import Template, render
from agiflow_lab.providers.base import Completion, CompletionRequest, ProviderClient, ProviderError
from agiflow_lab.providers.prices import PriceBook
from agiflow_lab.providers.retry import RetryPolicy, complete_with_retries

log = logging.getLogger(__name__)

PAGE_SIZE = 500
WRITE_BATCH = 200
WRITE_EVERY_SECONDS = 0.2
PROGRESS_EVERY_SECONDS = 0.5


@dataclass(frozen=True)
class JobContext:
    """Which job attempt this engine runs as, so its progress events are attributed (and fenced) like
    the worker's own."""

    job_id: str
    attempt: int
    worker_id: str


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    project: str
    dataset_id: int
    dataset_version: int
    items_total: int
    prompt_type: str
    template: Template
    model: str
    params: dict[str, Any]
    concurrency: int
    retry: RetryPolicy


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
        self, db: Database, plan: RunPlan, client: ProviderClient, evaluators: list[Evaluator], prices: PriceBook,
        job: JobContext | None, on_progress: Callable[[int, int], None] | None = None,
    ) -> None:  # fmt: skip
        self.db = db
        self.plan = plan
        self.client = client
        self.evaluators = evaluators
        self.prices = prices
        self.job = job
        self.on_progress = on_progress
        self._in_flight = 0

    async def run(self) -> EngineStats:
        plan = self.plan
        stats = EngineStats(plan.items_total)
        async with self.db.connection() as conn:
            totals = await store.run_totals(conn, plan.run_id)  # a resumed run counts what is already there
        stats.already_done = int(totals["done"])
        progress = _Progress(done=stats.already_done, passed=int(totals["passed"]), errors=int(totals["errors"]))
        items: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(plan.concurrency * 2)
        results: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(WRITE_BATCH * 4)
        started = time.perf_counter()
        writer = asyncio.create_task(self._write(results, progress, stats), name="eval-writer")
        workers = [asyncio.create_task(self._work(items, results, stats)) for _ in range(plan.concurrency)]
        try:
            await self._feed(items)
            for _ in workers:
                await items.put(None)
            await asyncio.gather(*workers)
            await results.put(None)
            await writer
        except BaseException:
            for task in (*workers, writer):
                task.cancel()
            await asyncio.gather(*workers, writer, return_exceptions=True)
            raise
        stats.seconds = time.perf_counter() - started
        return stats

    async def _feed(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        after = 0
        while True:
            async with self.db.connection() as conn:
                page = await datasets_store.items_page(
                    conn, self.plan.dataset_id, self.plan.dataset_version, after_ordinal=after, limit=PAGE_SIZE
                )
                if not page:
                    return
                done = await store.finished_items(conn, self.plan.run_id, [item["item_id"] for item in page])
            for item in page:
                if item["item_id"] not in done:
                    await queue.put(item)
            after = int(page[-1]["ordinal"])
            if len(page) < PAGE_SIZE:
                return

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
            "run_id": plan.run_id, "item_id": item["item_id"], "ordinal": item["ordinal"], "input": item["input"],
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
            completion: Completion = await complete_with_retries(self.client, request, plan.retry)
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
        for delay in (0.2, 0.5, 1, 2, 5, 10, 0):  # a database blip must not lose finished work
            try:
                async with self.db.transaction() as conn:
                    await store.insert_results(conn, batch)
                    if report and self.job is not None:
                        await outbox.enqueue(conn, JOB_EVENTS, self.job.job_id, self._event(progress))
                break
            except Exception:
                if not delay:
                    raise
                log.warning("cannot write %d results; retrying", len(batch), exc_info=True)
                await asyncio.sleep(delay)
        if report:
            progress.sent_at = now
            if self.on_progress is not None:
                self.on_progress(progress.done, self.plan.items_total)

    def _event(self, progress: _Progress) -> dict[str, Any]:
        assert self.job is not None
        return {
            "job_id": self.job.job_id, "attempt": self.job.attempt, "worker_id": self.job.worker_id,
            "type": "progress",
            "data": {"unit": "items", "run_id": self.plan.run_id, "done": progress.done,
                     "total": self.plan.items_total, "passed": progress.passed, "errors": progress.errors},
        }  # fmt: skip


def _messages(prompt_type: str, rendered: Template) -> list[dict[str, str]]:
    if isinstance(rendered, str):
        return [{"role": "user", "content": rendered}]
    return [{"role": m["role"], "content": m["content"]} for m in rendered]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


ProgressCallback = Callable[[int, int], Awaitable[None]]
