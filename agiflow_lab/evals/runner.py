"""The entry point the built-in ``evaluate`` notebook calls: assemble the engine for one run from the
database, run it, and load the report.

It runs in the job's kernel with the worker's database URL and secret-key location in its environment
(``AGIFLOW_DATABASE_URL``, ``AGIFLOW_SECRET_KEY_FILE``), and the job attempt it runs as
(``AGIFLOW_JOB_ID``, ``AGIFLOW_JOB_ATTEMPT``, ``AGIFLOW_WORKER_ID``).
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.config import Settings
from agiflow_lab.db.database import Database
from agiflow_lab.evals import store
from agiflow_lab.evals.engine import Engine, EngineStats, JobContext, RunPlan
from agiflow_lab.evals.evaluators.base import Evaluator
from agiflow_lab.evals.evaluators.judge import JudgeBinding
from agiflow_lab.evals.evaluators.registry import build_evaluator
from agiflow_lab.evals.evaluators.specs import EvaluatorSpecAdapter
from agiflow_lab.evals.report import Report
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.prompts.service import PromptService
from agiflow_lab.providers.base import ProviderClient
from agiflow_lab.providers.retry import RetryPolicy, complete_with_retries
from agiflow_lab.providers.service import ModelService, open_model_service


def _job_context() -> JobContext | None:
    job_id = os.environ.get("AGIFLOW_JOB_ID")
    if not job_id:
        return None  # run by hand, outside a job: no progress events
    return JobContext(job_id, int(os.environ.get("AGIFLOW_JOB_ATTEMPT", "1")), os.environ.get("AGIFLOW_WORKER_ID", ""))


def _database() -> Database:
    url = Settings().with_env().database_url
    if not url:
        raise RuntimeError("AGIFLOW_DATABASE_URL is not set: the evaluation notebook runs as an AGIFlow job")
    return Database(url, min_size=1, max_size=4)


async def run_evaluation(run_id: str, *, print_progress: bool = True) -> EngineStats:
    db = _database()
    await db.open()
    clients: list[ProviderClient] = []
    try:
        async with db.connection() as conn:
            run = await store.get_run(conn, run_id)
        if run is None:
            raise LookupError(f"evaluation run {run_id!r} does not exist")
        project = run["project"]
        projects = ProjectService(db, Authorizer(db))
        prompts = PromptService(db, projects)
        models: ModelService = open_model_service(db, projects, Settings().with_env())
        prompt = await prompts.get(project, run["prompt_name"], version=run["prompt_version"])
        retry = RetryPolicy(max_retries=run["max_retries"])
        client = await models.open_client(project, run["connection_name"], timeout=run["request_timeout"])
        clients.append(client)
        evaluators: list[Evaluator] = []
        for spec_data in run["evaluators"]:
            spec = EvaluatorSpecAdapter.validate_python(spec_data)
            judge = None
            if spec.type == "llm_judge":
                judge_client = await models.open_client(project, spec.connection, timeout=run["request_timeout"])
                clients.append(judge_client)
                connection = await models.resolve(project, spec.connection)
                rubric = await prompts.get(project, spec.prompt, version=spec.version)
                judge = JudgeBinding(
                    complete=_retrying(judge_client, retry),
                    model=spec.model or str(rubric.config.get("model") or connection.default_model or run["model"]),
                    params={**{k: v for k, v in rubric.config.items() if k != "model" and v is not None},
                            **spec.params},
                    prompt_type=rubric.type,
                    template=_template(rubric.template),
                )  # fmt: skip
            evaluators.append(build_evaluator(spec, judge=judge))
        plan = RunPlan(
            run_id=run_id, project=project, dataset_id=int(run["dataset_id"]),
            dataset_version=int(run["dataset_version"]), items_total=int(run["items_total"]), prompt_type=prompt.type,
            template=_template(prompt.template), model=run["model"], params=run["params"],
            concurrency=int(run["concurrency"]), retry=retry,
        )  # fmt: skip
        prices = await models.prices(project)
        engine = Engine(db, plan, client, evaluators, prices, _job_context(),
                        on_progress=_printer(plan.items_total) if print_progress else None)  # fmt: skip
        return await engine.run()
    finally:
        for c in clients:
            await c.close()
        await db.close()


def _retrying(client: ProviderClient, retry: RetryPolicy) -> Any:
    async def complete(request: Any) -> Any:
        return await complete_with_retries(client, request, retry)

    return complete


def _template(template: Any) -> Any:
    if isinstance(template, str):
        return template
    return [m if isinstance(m, dict) else m.model_dump() for m in template]


def _printer(total: int) -> Any:
    """A line per tenth of the run: the job log (and the executed notebook) show how it went, without
    thousands of progress lines."""
    shown = {"step": -1}

    def show(done: int, _total: int) -> None:
        step = done * 10 // max(total, 1)
        if step > shown["step"]:
            shown["step"] = step
            print(f"{done:,} of {total:,} items ({done / max(total, 1):.0%})", file=sys.stdout, flush=True)

    return show


async def open_report(run_id: str) -> Report:
    db = _database()
    await db.open()
    try:
        return await Report.load(db, run_id)
    finally:
        await db.close()


def png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
