"""The entry point the built-in ``evaluate`` notebook calls: assemble the engine for the job's run from
the worker's job API, run it, and load the report.

It runs in the job's kernel, next to user code (``python`` evaluators), so it holds no database URL,
secret key or model key: only the job API's address and this job's token (``AGIFLOW_JOB_API``,
``AGIFLOW_JOB_TOKEN``). The run is the one bound to the job by the platform, not one the notebook names.
"""

from __future__ import annotations

import sys
from typing import Any

from agiflow_lab.evals.engine import Engine, EngineStats, RunPlan
from agiflow_lab.evals.evaluators.base import Evaluator
from agiflow_lab.evals.evaluators.judge import JudgeBinding
from agiflow_lab.evals.evaluators.registry import build_evaluator
from agiflow_lab.evals.evaluators.specs import EvaluatorSpecAdapter
from agiflow_lab.evals.job_client import JobApiClient
from agiflow_lab.evals.report import Report
from agiflow_lab.providers.prices import Price, PriceBook


async def run_evaluation(run_id: str | None = None, *, print_progress: bool = True) -> EngineStats:
    """Evaluate this job's run and, if it is a batch inference (``output_dataset``), have the worker write
    its outputs once every item is done. ``run_id`` (the notebook's parameter, for readers of the report)
    must be that run if given."""
    api = JobApiClient.from_env()
    try:
        spec = await api.spec()
        if run_id and run_id != spec.run_id:
            raise LookupError(f"this job runs evaluation run {spec.run_id}, not {run_id}")
        evaluators: list[Evaluator] = []
        for spec_data in spec.evaluators:
            evaluator_spec = EvaluatorSpecAdapter.validate_python(spec_data)
            judge = None
            if (bound := spec.judges.get(str(spec_data.get("name")))) is not None:
                judge = JudgeBinding(complete=api.completer(bound.connection), model=bound.model, params=bound.params,
                                     prompt_type=bound.prompt_type, template=bound.template)  # fmt: skip
            evaluators.append(build_evaluator(evaluator_spec, judge=judge))
        plan = RunPlan(
            run_id=spec.run_id, project=spec.project, items_total=spec.items_total, prompt_type=spec.prompt_type,
            template=spec.template, model=spec.model, params=spec.params, concurrency=spec.concurrency,
        )  # fmt: skip
        prices = PriceBook(overrides={m: Price(i, o, "project") for m, (i, o) in spec.price_overrides.items()})
        engine = Engine(api, plan, api.completer(spec.connection), evaluators, prices,
                        on_progress=_printer(plan.items_total) if print_progress else None)  # fmt: skip
        stats = await engine.run()
        if spec.output_dataset is not None:  # batch inference: every item is done, so the outputs are complete
            out = await api.write_output()
            if print_progress:
                how = "written" if out.written else "already written by an earlier attempt"
                print(f"outputs {how} as dataset {out.dataset!r} version {out.version} ({out.item_count:,} items)")
        return stats
    finally:
        await api.close()


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


async def open_report(run_id: str | None = None) -> Report:
    api = JobApiClient.from_env()
    try:
        data = await api.report()
    finally:
        await api.close()
    return Report(**dict(data))  # the wire model carries exactly the report's fields
