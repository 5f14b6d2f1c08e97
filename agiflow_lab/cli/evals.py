"""``agiflow-lab eval run|show|compare``: evaluation runs from a terminal or a CI job.

``eval run`` waits with a progress bar (on stderr) and can gate a pipeline: with ``--min-pass-rate`` it
exits 5 when the run's pass rate is below the threshold, and 6 when the run itself failed or was
cancelled, so ``agiflow-lab eval run ... --min-pass-rate 0.9 || exit 1`` blocks a bad prompt change.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from agiflow_lab.errors import InvalidInput
from agiflow_lab.evals.models import Run
from agiflow_lab.sdk.client import Client

GATE_FAILED, RUN_FAILED = 5, 6


def _evaluators(args: argparse.Namespace) -> list[Any]:
    specs: list[Any] = []
    try:
        if args.evaluators_file:
            loaded = yaml.safe_load(Path(args.evaluators_file).read_text())
            specs.extend(loaded if isinstance(loaded, list) else (loaded or {}).get("evaluators", []))
        for text in args.evaluator or []:
            specs.append(json.loads(text) if text.lstrip().startswith("{") else text)
    except (OSError, ValueError, yaml.YAMLError, AttributeError) as exc:
        raise InvalidInput(f"cannot read the evaluators: {exc}", {"field": "evaluator"}) from exc
    return specs


def _params(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"--params is not JSON: {exc}", {"field": "params"}) from exc
    if not isinstance(value, dict):
        raise InvalidInput("--params must be a JSON object", {"field": "params"})
    return value


def summary_lines(run: Run) -> list[str]:
    a = run.aggregates
    builtin = " (built-in echo: returns the rendered prompt, no model called)" if run.model.get("builtin") else ""
    cost = "unpriced" if a.cost is None and a.unpriced_items else ("-" if a.cost is None else f"${a.cost:.4f}")
    lines = [
        f"run       {run.id}  {run.name}  [{run.state}]",
        f"prompt    {run.prompt['name']} v{run.prompt['version']}   dataset {run.dataset['name']} "
        f"v{run.dataset['version']}   model {run.model['model']} via {run.model['connection']}{builtin}",
        f"items     {a.items_done}/{a.items_total}   pass rate {_pct(a.pass_rate)}   mean score {_num(a.mean_score)}   "
        f"errors {a.errors}",
        f"latency   p50 {_num(a.latency_p50_ms, 0)} ms   p95 {_num(a.latency_p95_ms, 0)} ms   tokens "
        f"{a.tokens_in}/{a.tokens_out}   cost {cost}",
    ]
    if run.output_dataset is not None:
        written = "not written yet" if run.output_version is None else f"v{run.output_version}"
        lines.append(f"outputs   dataset {run.output_dataset} {written}")
    for e in a.evaluators:
        lines.append(f"  {e.name:<20} pass rate {_pct(e.pass_rate):>7}   mean {_num(e.mean_score)}   "
                     f"threshold {e.threshold}   errors {e.errors}")  # fmt: skip
    return lines


def cmd_eval_run(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    evaluators = _evaluators(args)
    if not evaluators and args.output_dataset is None:
        raise InvalidInput("give at least one --evaluator (or --evaluators-file), or --output-dataset",
                           {"field": "evaluator"})  # fmt: skip
    handle = client.evals.run(
        args.prompt, args.dataset, evaluators=evaluators, output_dataset=args.output_dataset,
        connection=args.connection, model=args.model,
        params=_params(args.params), name=args.name or "",
        concurrency=args.concurrency, idempotency_key=args.idempotency_key,
    )  # fmt: skip
    err(f"started run {handle.id} (job {handle.run.job_id})")
    if args.no_wait:
        out(handle.id)
        return 0
    run = handle.wait(progress=not args.quiet)
    if args.json:
        out(run.model_dump_json(indent=2))
    else:
        for line in summary_lines(run):
            out(line)
    if run.state != "succeeded":
        err(f"run {run.id} {run.state}" + (f": {run.error.ename}: {run.error.evalue}" if run.error else ""))
        return RUN_FAILED
    rate = run.aggregates.pass_rate or 0.0
    if args.min_pass_rate is not None and rate < args.min_pass_rate:
        err(f"pass rate {rate:.1%} is below --min-pass-rate {args.min_pass_rate:.1%}")
        return GATE_FAILED
    return 0


def cmd_eval_show(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    run = client.evals.get(args.run_id).run
    out(run.model_dump_json(indent=2) if args.json else "\n".join(summary_lines(run)))
    return 0


def cmd_eval_compare(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    comparison = client.evals.compare(*args.run_ids)
    if args.json:
        out(comparison.first.model_dump_json(indent=2))
        return 0
    out(comparison.summary().to_string())
    missing = f", {comparison.missing} missing" if comparison.missing else ""
    out(f"\n{comparison.regressed} regressed, {comparison.improved} improved, {comparison.unchanged} unchanged "
        f"({comparison.score_up} score up, {comparison.score_down} score down){missing} "
        f"(pass/fail of the last run against the first)")  # fmt: skip
    for item in comparison.first.items[: args.show]:
        scores = " → ".join("-" if r is None else _num(r.score) for r in item.results)
        delta = "" if item.score_delta is None else f" ({item.score_delta:+.3f})"
        out(f"  {item.change:<9} {item.item_id:<24} {scores}{delta}")
    return 0


def register(commands: Any, api: argparse.ArgumentParser, wrap: Any) -> None:
    evals = commands.add_parser("eval", help="evaluation runs").add_subparsers(dest="command", required=True)
    run = evals.add_parser("run", parents=[api], help="run a prompt over a dataset and score it; waits")
    run.add_argument("--prompt", required=True, help="NAME, NAME@LABEL or NAME:VERSION (default label: latest)")
    run.add_argument("--dataset", required=True, help="NAME or NAME:VERSION (default: the latest version)")
    run.add_argument("--connection", default="echo", help="model connection (default: the built-in echo)")
    run.add_argument("--model", help="model name (default: the prompt's, then the connection's)")
    run.add_argument("--params", help="JSON model parameters, e.g. '{\"temperature\": 0}'")
    run.add_argument("--evaluator", action="append", help="a type (exact_match) or a JSON spec; repeatable")
    run.add_argument("--evaluators-file", help="YAML/JSON list of evaluator specs")
    run.add_argument("--output-dataset", metavar="NAME",
                     help="batch inference: write the items with their outputs as this dataset (evaluators optional)")  # fmt: skip
    run.add_argument("--concurrency", type=int, default=8)
    run.add_argument("--name", help="run name")
    run.add_argument("--idempotency-key", help="re-running with the same key returns the same run")
    run.add_argument("--min-pass-rate", type=float, help="exit 5 when the pass rate is below this (0..1)")
    run.add_argument("--no-wait", action="store_true", help="print the run id and return at once")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print the finished run as JSON")
    run.set_defaults(run=wrap(cmd_eval_run))
    show = evals.add_parser("show", parents=[api], help="a run's state and aggregates")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=wrap(cmd_eval_show))
    compare = evals.add_parser("compare", parents=[api], help="compare runs (the first is the baseline)")
    compare.add_argument("run_ids", nargs="+")
    compare.add_argument("--show", type=int, default=20, help="changed items to list (default 20)")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(run=wrap(cmd_eval_compare))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
