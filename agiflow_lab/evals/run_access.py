"""What an evaluation job's kernel may do with its run, done by the trusted worker on its behalf.

A job's kernel runs user code and holds only a token for its own job (see
``agiflow_lab_workers.job_api``). Everything it needs goes through one :class:`RunAccess`, which is
bound to the run *of that job* (found from the job id, never from a parameter the kernel could choose)
and so can only read that run's pinned dataset version, call that run's pinned connections, and write
that run's results. Decrypted model keys stay in this process.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agiflow_lab.bus.outbox import enqueue
from agiflow_lab.bus.topics import SPANS
from agiflow_lab.datasets import store as datasets_store
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Forbidden, InvalidInput, NotFound
from agiflow_lab.evals import store
from agiflow_lab.evals.report import Report
from agiflow_lab.evals.traces import item_scores, results_batches
from agiflow_lab.evals.wire import (
    CompleteCall,
    CompleteReply,
    ItemsPage,
    JudgeSpec,
    Progress,
    ReportData,
    ResultsBatch,
    RunSpec,
    Totals,
)
from agiflow_lab.jobs.events import ItemProgress, ProgressEvent, record_event
from agiflow_lab.prompts.service import PromptService
from agiflow_lab.providers.base import CompletionRequest, ProviderClient, ProviderError
from agiflow_lab.providers.retry import RetryPolicy, complete_with_retries
from agiflow_lab.providers.service import ModelService
from agiflow_lab.traces.annotations import NewScore, insert_scores
from agiflow_lab.traces.messages import SpanBatch

log = logging.getLogger(__name__)

MAX_PAGE = 1000


@dataclass(frozen=True)
class JobContext:
    """Which job attempt the kernel runs as, so its progress events are attributed (and fenced) like the
    worker's own."""

    job_id: str
    attempt: int
    worker_id: str
    project: str


class ResultRow(BaseModel):
    """One item's result as the kernel reports it; the run id is not the kernel's to choose."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(max_length=1000)
    ordinal: int = Field(ge=0, le=2**62)
    input: Any = None
    expected: Any = None
    rendered: Any = None
    output: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    tokens_in: int | None = Field(None, ge=0, le=2**31 - 1)
    tokens_out: int | None = Field(None, ge=0, le=2**31 - 1)
    cost: float | None = None
    attempts: int = Field(0, ge=0, le=2**31 - 1)
    scores: dict[str, Any] = Field(default_factory=dict)
    score: float | None = None
    passed: bool = False

    @field_validator("latency_ms", "cost", "score")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class RunAccess:
    def __init__(
        self, db: Database, prompts: PromptService, models: ModelService, job: JobContext, run: dict[str, Any]
    ) -> None:
        self.db = db
        self.prompts = prompts
        self.models = models
        self.job = job
        self.run = run
        self.run_id = str(run["id"])
        self._clients: dict[str, ProviderClient] = {}
        self._opening = asyncio.Lock()
        self._connections = {run["connection_name"]} | {
            spec["connection"] for spec in run["evaluators"] if spec.get("type") == "llm_judge"
        }

    @classmethod
    async def for_job(
        cls, db: Database, prompts: PromptService, models: ModelService, job: JobContext
    ) -> RunAccess | None:
        """The run this job executes, if it is an evaluation job of the same project; else None."""
        async with db.connection() as conn:
            run = await store.run_of_job(conn, job.job_id)
        if run is None:
            return None
        if run["project"] != job.project:  # cannot happen through the API; refuse rather than trust it
            log.error("job %s of project %s is bound to a run of %s", job.job_id, job.project, run["project"])
            return None
        return cls(db, prompts, models, job, run)

    async def spec(self) -> RunSpec:
        run, project = self.run, self.job.project
        prompt = await self.prompts.get(project, run["prompt_name"], version=run["prompt_version"])
        judges: dict[str, JudgeSpec] = {}
        for spec in run["evaluators"]:
            if spec.get("type") != "llm_judge":
                continue
            connection = await self.models.resolve(project, spec["connection"])
            rubric = await self.prompts.get(project, spec["prompt"], version=spec["version"])
            judges[spec["name"]] = JudgeSpec(
                connection=spec["connection"],
                model=spec.get("model") or str(rubric.config.get("model") or connection.default_model or run["model"]),
                params={**{k: v for k, v in rubric.config.items() if k != "model" and v is not None},
                        **(spec.get("params") or {})},
                prompt_type=rubric.type,
                template=_template(rubric.template),
            )  # fmt: skip
        prices = await self.models.prices(project)
        overrides = {
            model: (price.input_per_million, price.output_per_million)
            for model, price in prices.rows()
            if price.source == "project"
        }
        return RunSpec(
            run_id=self.run_id, project=project, name=run["name"], prompt_type=prompt.type,
            template=_template(prompt.template), connection=run["connection_name"], model=run["model"],
            params=run["params"], items_total=int(run["items_total"]), concurrency=int(run["concurrency"]),
            max_retries=int(run["max_retries"]), evaluators=run["evaluators"], judges=judges,
            price_overrides=overrides, output_dataset=run["output_dataset"],
        )  # fmt: skip

    async def totals(self) -> Totals:
        async with self.db.connection() as conn:
            row = await store.run_totals(conn, self.run_id)
        return Totals(done=int(row["done"]), passed=int(row["passed"]), errors=int(row["errors"]))

    async def pending_items(self, after: int, limit: int) -> ItemsPage:
        """A page of the pinned version's items that have no result yet (a resumed run skips them)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", {"field": "limit"})
        async with self.db.connection() as conn:
            page = await datasets_store.items_page(
                conn, int(self.run["dataset_id"]), int(self.run["dataset_version"]), after_ordinal=after, limit=limit
            )
            done = await store.finished_items(conn, self.run_id, [item["item_id"] for item in page])
        pending = [item for item in page if item["item_id"] not in done]
        return ItemsPage(items=pending, next_after=int(page[-1]["ordinal"]) if len(page) == limit else None)

    async def write(self, batch: ResultsBatch) -> None:
        """Results and the progress they make commit together, so progress never runs ahead of results.

        The rows are checked and their traces built on a thread: for a batch of 200 that is tens of
        milliseconds of CPU, which on the event loop would hold back the reply of every model call that
        finished meanwhile (this process makes the run's model calls); on a thread the loop gets its turn
        every few milliseconds."""
        project_id = int(self.run["project_id"])
        rows, scores, span_batches = await asyncio.to_thread(self._prepare, project_id, batch.results)

        async def insert(conn: Conn) -> None:
            await store.insert_results(conn, rows)
            await insert_scores(conn, project_id, scores)
            for batch in span_batches:  # each item's trace (evals/traces.py), on the spans topic once this commits
                await enqueue(conn, SPANS, f"eval-run:{self.run_id}", batch.model_dump(mode="json"))

        event = self._event(batch.progress) if batch.progress is not None else None
        await record_event(self.db, event, with_writes=insert)

    def _prepare(
        self, project_id: int, results: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[NewScore], list[SpanBatch]]:
        rows = [{"run_id": self.run_id, **ResultRow.model_validate(r).model_dump()} for r in results]
        scores = [score for row in rows for score in item_scores(self.run, row)]
        return rows, scores, results_batches(project_id, self.run, rows) if rows else []

    async def complete(self, call: CompleteCall) -> CompleteReply:
        """One model call with the run's retry policy, on a connection this run pinned."""
        if call.connection not in self._connections:
            raise Forbidden(f"this job may not use connection {call.connection!r}", {"field": "connection"})
        client = await self._client(call.connection)
        request = CompletionRequest(messages=call.messages, model=call.model, params=call.params,
                                    json_output=call.json_output)  # fmt: skip
        try:
            done = await complete_with_retries(client, request, RetryPolicy(max_retries=int(self.run["max_retries"])))
        except ProviderError as exc:
            return CompleteReply(error=str(exc), status=exc.status, attempts=exc.attempts)
        return CompleteReply(text=done.text, model=done.model, tokens_in=done.tokens_in, tokens_out=done.tokens_out,
                             latency_ms=done.latency_ms, attempts=done.attempts)  # fmt: skip

    async def report(self) -> ReportData:
        report = await Report.load(self.db, self.run_id)
        return ReportData(
            run=_jsonable(report.run), aggregates=report.aggregates, score_histograms=report.score_histograms,
            latency_edges=report.latency_edges, latency_histogram=report.latency_histogram,
            worst=[_jsonable(row) for row in report.worst],
        )  # fmt: skip

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.close()
            except Exception:
                log.warning("could not close a model client", exc_info=True)

    async def _client(self, connection: str) -> ProviderClient:
        async with self._opening:
            client = self._clients.get(connection)
            if client is None:
                try:
                    client = await self.models.open_client(
                        self.job.project, connection, timeout=float(self.run["request_timeout"])
                    )
                except NotFound as exc:
                    raise NotFound(str(exc), {"field": "connection"}) from exc
                self._clients[connection] = client
            return client

    def _event(self, progress: Progress) -> ProgressEvent:
        items = ItemProgress(run_id=self.run_id, done=progress.done, total=int(self.run["items_total"]),
                             passed=progress.passed, errors=progress.errors)  # fmt: skip
        return ProgressEvent(job_id=self.job.job_id, attempt=self.job.attempt, worker_id=self.job.worker_id, data=items)


def _template(template: Any) -> Any:
    if isinstance(template, str):
        return template
    return [m if isinstance(m, dict) else m.model_dump() for m in template]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Rows carry uuids, datetimes and decimals; the wire carries JSON."""
    import json

    result: dict[str, Any] = json.loads(json.dumps(row, default=str))
    return result
