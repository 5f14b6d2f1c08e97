"""Evaluation-run rules: what a run pins at submit, how it becomes a job, and how results are read back.

The run itself executes in the built-in ``evaluate`` notebook (``engine.py``) on a worker; this service
only writes the run and its job in one transaction and reads what the engine recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime

from agiflow_lab.audit import store as audit
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.paging import Cursor, KeyInt, Page
from agiflow_lab.datasets.service import DatasetService
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, InvalidInput, NotFound
from agiflow_lab.evals import store
from agiflow_lab.evals.aggregates import aggregates
from agiflow_lab.evals.evaluators.specs import LLMJudgeSpec
from agiflow_lab.evals.models import Comparison, ItemComparison, ItemResult, Run, RunAggregates, RunSubmit
from agiflow_lab.evals.traces import item_trace_id
from agiflow_lab.jobs import store as jobs_store
from agiflow_lab.jobs.models import FINAL_STATES, JobSubmit
from agiflow_lab.jobs.service import JobService
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.prompts.models import PromptVersion
from agiflow_lab.prompts.service import PromptService
from agiflow_lab.providers.service import ModelService

NOTEBOOK = "builtin:evaluate"
RUN_CURSOR = Cursor[tuple[datetime, uuid.UUID]](tuple[AwareDatetime, uuid.UUID])  # (created_at, id), newest first
ORDINAL_CURSOR = Cursor[int](KeyInt)  # the last item's ordinal in dataset order
DEFAULT_PROMPT_LABEL = "latest"  # an evaluation usually tests the newest version, before it is promoted
MAX_COMPARED = 5


@dataclass(frozen=True)
class PinnedRun:
    """A run submission with every reference resolved: what ``EvalService.submit_in`` writes."""

    body: RunSubmit
    project_id: int
    row: dict[str, Any]


class EvalService:
    def __init__(
        self, db: Database, projects: ProjectService, prompts: PromptService, datasets: DatasetService,
        models: ModelService, jobs: JobService,
    ) -> None:  # fmt: skip
        self.db = db
        self.projects = projects
        self.prompts = prompts
        self.datasets = datasets
        self.models = models
        self.jobs = jobs

    async def submit(self, actor: Actor, project: str, body: RunSubmit) -> tuple[Run, bool]:
        """Pin every reference, then write the run and its job together; returns (run, created)."""
        pinned = await self.pin(project, body)
        async with self.db.transaction() as conn:
            result = await self.submit_in(conn, actor, pinned)
        self.jobs.dispatch_wanted.set()
        return result

    async def pin(self, project: str, body: RunSubmit) -> PinnedRun:
        """Resolve what the run will use (a label's version, the latest dataset version, the model): read
        before the writing transaction opens, so ``submit_in`` holds it only for the writes."""
        project_id = await self.projects.resolve_id(project)
        prompt = await self._prompt(project, body.prompt.name, body.prompt.label, body.prompt.version, "prompt")
        dataset = await self.datasets.resolve(project, body.dataset.name, body.dataset.version)
        if dataset.item_count == 0:
            raise InvalidInput(
                f"dataset {dataset.name!r} version {dataset.version} has no items", {"field": "dataset.version"}
            )
        connection = await self.models.resolve(project, body.model.connection)
        config = {k: v for k, v in prompt.config.items() if v is not None}
        model = body.model.model or config.pop("model", None) or connection.default_model
        config.pop("model", None)
        if not model:
            raise InvalidInput(
                "no model: name one in model.model, the prompt version's parameters or the connection",
                {"field": "model.model"},
            )
        if body.output_dataset is not None:
            await self._check_output(project, body.output_dataset)
        evaluators = [await self._pinned_evaluator(project, spec) for spec in body.evaluators]
        ref = f"version:{body.prompt.version}" if body.prompt.version else f"label:{body.prompt.label or 'latest'}"
        row = {
            "project_id": project_id,
            "name": body.name or f"{prompt.name} v{prompt.version} × {dataset.name} v{dataset.version}",
            "prompt_name": prompt.name, "prompt_version": prompt.version, "prompt_ref": ref,
            "connection_name": connection.name, "connection_kind": connection.kind, "model": model,
            "params": {**config, **body.model.params}, "dataset_id": dataset.dataset_id,
            "dataset_name": dataset.name, "dataset_version": dataset.version, "items_total": dataset.item_count,
            "evaluators": evaluators, "concurrency": body.concurrency, "max_retries": body.max_retries,
            "request_timeout": body.request_timeout, "output_dataset": body.output_dataset,
        }  # fmt: skip
        return PinnedRun(body=body, project_id=project_id, row=row)

    async def submit_in(self, conn: Conn, actor: Actor, pinned: PinnedRun) -> tuple[Run, bool]:
        """Write a pinned run and its job inside the caller's transaction (a schedule's firing row goes in
        the same one); returns (run, created). The caller sets ``jobs.dispatch_wanted`` after commit."""
        body, project_id = pinned.body, pinned.project_id
        if body.idempotency_key is not None and (existing := await self._by_key(conn, project_id, body)):
            return existing, False
        run_id = str(uuid.uuid4())
        job_body = JobSubmit(
            notebook=NOTEBOOK, parameters={"run_id": run_id}, timeout_seconds=body.timeout_seconds,
            idempotency_key=body.idempotency_key, max_attempts=5,
        )  # fmt: skip
        job, _ = await self.jobs.submit_in(conn, actor, project_id, job_body)
        row = {**pinned.row, "id": run_id, "job_id": job.id, "created_by": actor.principal}
        await store.insert_run(conn, row)
        await audit.record(
            conn, project_id=project_id, actor=actor, action="eval.run", resource_type="eval_run",
            resource_id=run_id, after={k: row[k] for k in ("name", "prompt_name", "prompt_version", "model",
                                                           "dataset_name", "dataset_version", "job_id",
                                                           "output_dataset")},
        )  # fmt: skip
        created = await store.get_run(conn, run_id)
        assert created is not None
        return await self._run(conn, created), True

    async def run_of_job(self, project: str, job_id: str) -> Run | None:
        """The evaluation run a job executes, if it is one (the job's own project only)."""
        job = await self.jobs.get(project, job_id)
        async with self.db.connection() as conn:
            row = await store.run_of_job(conn, job.id)
            return None if row is None else await self._run(conn, row)

    async def _by_key(self, conn: Any, project_id: int, body: RunSubmit) -> Run | None:
        assert body.idempotency_key is not None
        job = await jobs_store.by_idempotency_key(conn, project_id, body.idempotency_key)
        if job is None:
            return None
        row = await store.run_of_job(conn, str(job["id"]))
        if row is None:
            raise Conflict("this idempotency key was used for a job that is not an evaluation run",
                           {"field": "idempotency_key", "job_id": str(job["id"])})  # fmt: skip
        return await self._run(conn, row)

    async def _prompt(
        self, project: str, name: str, label: str | None, version: int | None, field: str
    ) -> PromptVersion:
        try:
            return await self.prompts.get(
                project, name, label=None if version else (label or DEFAULT_PROMPT_LABEL), version=version
            )
        except NotFound as exc:
            raise NotFound(str(exc), {**exc.details, "field": field}) from exc

    async def _check_output(self, project: str, name: str) -> None:
        """An archived dataset takes no new versions: say so now, not after the whole run."""
        try:
            existing = await self.datasets.get(project, name)
        except NotFound:
            return  # the run creates it
        if existing.archived:
            raise Conflict(f"dataset {name!r} is archived", {"field": "output_dataset", "dataset": name})

    async def _pinned_evaluator(self, project: str, spec: Any) -> dict[str, Any]:
        """A judge's rubric prompt is pinned like the run's own prompt, and its connection must exist."""
        if isinstance(spec, LLMJudgeSpec):
            await self.models.resolve(project, spec.connection)
            rubric = await self._prompt(project, spec.prompt, spec.label, spec.version, "evaluators.prompt")
            spec = spec.model_copy(update={"label": None, "version": rubric.version})
        data: dict[str, Any] = spec.model_dump(mode="json")
        data["name"] = spec.name or spec.type
        return data

    # --- reading -------------------------------------------------------------------------------

    async def get(self, project: str, run_id: str) -> Run:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            row = await store.get_run(conn, _uuid(run_id), project_id)
            if row is None:
                raise NotFound(f"evaluation run {run_id!r} does not exist in project {project!r}", {"run": run_id})
            return await self._run(conn, row)

    async def search(
        self, project: str, *, dataset: str | None, prompt: str | None, cursor: str | None, limit: int
    ) -> Page[Run]:
        project_id = await self.projects.resolve_id(project)
        after = RUN_CURSOR.decode(cursor)
        async with self.db.connection() as conn:
            rows = await store.search_runs(conn, project_id, dataset=dataset, prompt=prompt, after=after,
                                           limit=limit + 1)  # fmt: skip
            runs = [await self._run(conn, row) for row in rows[:limit]]
        return Page(items=runs, next_cursor=RUN_CURSOR.next(rows, limit, lambda r: (r["created_at"], r["id"])))

    async def results(
        self, project: str, run_id: str, *, cursor: str | None, limit: int, failed_only: bool
    ) -> Page[ItemResult]:
        run = await self.get(project, run_id)
        after = ORDINAL_CURSOR.decode(cursor)
        async with self.db.connection() as conn:
            rows = await store.results_page(conn, run.id, after=after, limit=limit + 1, failed_only=failed_only)
        items = [_item(row) for row in rows[:limit]]
        return Page(items=items, next_cursor=ORDINAL_CURSOR.next(rows, limit, lambda r: r["ordinal"]))

    async def compare(
        self, project: str, run_ids: list[str], *, change: str | None, cursor: str | None, limit: int
    ) -> Comparison:
        """The first run is the baseline; items are classified by the last run's verdict against it (pass →
        fail regressed, fail → pass improved), with score changes beside the verdict, never counted as one."""
        if not 2 <= len(run_ids) <= MAX_COMPARED or len(set(run_ids)) != len(run_ids):
            raise InvalidInput(f"compare 2 to {MAX_COMPARED} different runs", {"field": "runs"})
        runs = [await self.get(project, run_id) for run_id in run_ids]
        base, last = runs[0].id, runs[-1].id
        after = ORDINAL_CURSOR.decode(cursor)
        async with self.db.connection() as conn:
            counts = await store.change_counts(conn, base, last)
            page = await store.changes_page(conn, base, last, change=change, after=after, limit=limit + 1)
            ids = [row["item_id"] for row in page[:limit]]
            found = await store.results_for(conn, [r.id for r in runs], ids)
        by_key = {(str(row["run_id"]), row["item_id"]): _item(row) for row in found}
        items = []
        for row in page[:limit]:
            results = [by_key.get((r.id, row["item_id"])) for r in runs]
            first = next(result for result in results if result is not None)
            items.append(ItemComparison(item_id=row["item_id"], input=first.input, expected=first.expected,
                                        change=row["change"], score_delta=row["score_delta"],
                                        results=results))  # fmt: skip
        return Comparison(
            runs=runs, regressed=counts.regressed, improved=counts.improved, unchanged=counts.unchanged,
            missing=counts.missing, score_up=counts.score_up, score_down=counts.score_down, items=items,
            next_cursor=ORDINAL_CURSOR.next(page, limit, lambda r: r["ordinal"]),
        )  # fmt: skip

    async def cancel(self, actor: Actor, project: str, run_id: str) -> Run:
        run = await self.get(project, run_id)
        await self.jobs.cancel(actor, project, run.job_id)
        return await self.get(project, run_id)

    async def _run(self, conn: Any, row: dict[str, Any]) -> Run:
        """Aggregates are computed from the results while a run goes, and kept once it is final: a
        finished 100k-item run is then read as often as clients like without re-scanning its results."""
        final = row["state"] in FINAL_STATES
        if final and row["aggregates"] is not None and row["aggregates_of"] == row["finished_at"]:
            agg = RunAggregates.model_validate(row["aggregates"])
        else:
            agg = await aggregates(conn, str(row["id"]), row["items_total"], row["evaluators"])
            if final:
                await store.keep_aggregates(conn, str(row["id"]), agg.model_dump(mode="json"), row["finished_at"])
        return Run(
            id=str(row["id"]), project=row["project"], name=row["name"], state=row["state"], job_id=str(row["job_id"]),
            prompt={"name": row["prompt_name"], "version": row["prompt_version"], "ref": row["prompt_ref"]},
            dataset={"name": row["dataset_name"], "version": row["dataset_version"]},
            model={"connection": row["connection_name"], "kind": row["connection_kind"], "model": row["model"],
                   "params": row["params"], "builtin": row["connection_kind"] == "echo"},
            evaluators=row["evaluators"], concurrency=row["concurrency"], max_retries=row["max_retries"],
            request_timeout=row["request_timeout"], created_by=row["created_by"], created_at=row["created_at"],
            started_at=row["started_at"], finished_at=row["finished_at"], error=row["error"],
            aggregates=agg, output_dataset=row["output_dataset"], output_version=row["output_version"],
        )  # fmt: skip


def _item(row: dict[str, Any]) -> ItemResult:
    return ItemResult.model_validate({**row, "trace_id": item_trace_id(str(row["run_id"]), row["item_id"])})


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise NotFound(f"evaluation run {value!r} does not exist", {"run": value}) from exc
