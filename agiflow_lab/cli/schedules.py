"""``agiflow-lab schedules list|create|pause|resume|run-now|delete|firings``: schedules from a terminal.

``create`` takes a cron expression (``--cron '0 3 * * *' --timezone Europe/Berlin``) or an interval
(``--every 3600``), and a target: a notebook job (``--notebook builtin:hello --param name=Ada``) or an
evaluation run read from a file holding the body of ``POST .../evals/runs`` (``--eval-file nightly.yaml``).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from agiflow_lab.errors import InvalidInput
from agiflow_lab.schedules.models import Firing, Schedule
from agiflow_lab.sdk.client import Client


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.strftime("%Y-%m-%d %H:%M:%S %Z")


def _table(rows: list[tuple[str, ...]], out: Any) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _every(s: Schedule) -> str:
    return f"cron {s.cron} ({s.timezone})" if s.cron else f"every {s.interval_seconds}s"


def _what(s: Schedule) -> str:
    if s.job is not None:
        return s.job.notebook
    assert s.eval is not None
    prompt = s.eval.prompt
    ref = f":{prompt.version}" if prompt.version else f"@{prompt.label or 'latest'}"
    return f"eval {prompt.name}{ref} × {s.eval.dataset.name}"


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    try:
        if args.parameters:
            loaded = json.loads(args.parameters)
            if not isinstance(loaded, dict):
                raise ValueError("not a JSON object")
            parameters.update(loaded)
        for pair in args.param or []:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"--param {pair!r} is not NAME=VALUE")
            try:
                parameters[key] = json.loads(value)
            except ValueError:
                parameters[key] = value  # plain text
    except ValueError as exc:
        raise InvalidInput(f"bad parameters: {exc}", {"field": "parameters"}) from exc
    return parameters


def _eval_body(path: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", {"field": "eval"}) from exc
    if not isinstance(loaded, dict):
        raise InvalidInput(f"{path}: the evaluation run must be a mapping (the body of POST .../evals/runs)",
                           {"field": "eval"})  # fmt: skip
    return loaded


def cmd_list(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    found = client.schedules.list(paused=True if args.paused else None)
    if args.json:
        out(json.dumps([s.model_dump(mode="json") for s in found], indent=2))
        return 0
    rows: list[tuple[str, ...]] = [("NAME", "WHEN", "TARGET", "NEXT", "LAST", "STATE")]
    for s in found:
        last = s.last_firing
        last_text = "-" if last is None else f"{last.outcome}" + (f" ({last.job_state})" if last.job_state else "")
        rows.append((s.name, _every(s), _what(s), _when(s.next_fire_at), last_text, "paused" if s.paused else "on"))
    _table(rows, out)
    return 0


def cmd_create(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    if (args.notebook is None) == (args.eval_file is None):
        raise InvalidInput("give --notebook (a job) or --eval-file (an evaluation run)", {"field": "job"})
    job: dict[str, Any] | None = None
    if args.notebook is not None:
        job = {"notebook": args.notebook, "parameters": _parameters(args)}
        if args.job_timeout is not None:
            job["timeout_seconds"] = args.job_timeout
    schedule = client.schedules.create(
        args.name, cron=args.cron, timezone=args.timezone, interval_seconds=args.every, job=job,
        eval=None if args.eval_file is None else _eval_body(args.eval_file), missed=args.missed,
        max_catch_up=args.max_catch_up, overlap=args.overlap, pass_rate_gate=args.pass_rate_gate,
        paused=True if args.paused else None,
        description=args.description,
    )  # fmt: skip
    return _show(schedule, args, out, err, "created")


def _show(schedule: Schedule, args: argparse.Namespace, out: Any, err: Any, done: str) -> int:
    if args.json:
        out(schedule.model_dump_json(indent=2))
        return 0
    out(f"{done} schedule {schedule.name!r}: {_every(schedule)}, {_what(schedule)}"
        + (" (paused)" if schedule.paused else ""))  # fmt: skip
    for t in schedule.next_fire_times:
        out(f"  next {_when(t)}")
    return 0


def cmd_pause(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    return _show(client.schedules.pause(args.name), args, out, err, "paused")


def cmd_resume(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    return _show(client.schedules.resume(args.name), args, out, err, "resumed")


def cmd_run_now(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    firing = client.schedules.run_now(args.name)
    if args.json:
        out(firing.model_dump_json(indent=2))
        return 0
    out(firing.job_id or "")  # alone on stdout: JOB=$(agiflow-lab schedules run-now nightly)
    err(f"started job {firing.job_id}" + (f" (evaluation run {firing.run_id})" if firing.run_id else ""))
    return 0


def cmd_delete(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    client.schedules.delete(args.name)
    out(f"deleted schedule {args.name!r} (the jobs and runs it started are kept)")
    return 0


def cmd_firings(args: argparse.Namespace, client: Client, out: Any, err: Any) -> int:
    found: list[Firing] = client.schedules.firings(args.name, outcome=args.outcome, limit=args.limit)
    if args.json:
        out(json.dumps([f.model_dump(mode="json") for f in found], indent=2))
        return 0
    rows: list[tuple[str, ...]] = [("TICK", "KIND", "OUTCOME", "JOB", "STATE", "RUN", "REASON")]
    for f in found:
        rows.append((_when(f.tick), "manual" if f.manual else "tick", f.outcome, f.job_id or "-", f.job_state or "-",
                     f.run_id or "-", f.reason or ""))  # fmt: skip
    _table(rows, out)
    return 0


def register(commands: Any, api: argparse.ArgumentParser, wrap: Any) -> None:
    group = commands.add_parser("schedules", help="jobs and evaluation runs on a schedule")
    schedules = group.add_subparsers(dest="command", required=True)
    listing = schedules.add_parser("list", parents=[api], help="the project's schedules and their next ticks")
    listing.add_argument("--paused", action="store_true", help="only paused schedules")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=wrap(cmd_list))

    create = schedules.add_parser("create", parents=[api], help="create a schedule")
    create.add_argument("name")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help="five-field cron expression, e.g. '0 3 * * *'")
    when.add_argument("--every", type=int, metavar="SECONDS", help="a fixed interval in seconds")
    create.add_argument("--timezone", help="IANA time zone of --cron (default UTC), e.g. Europe/Berlin")
    create.add_argument("--notebook", help="target: a notebook job (builtin:NAME or contents:PATH)")
    create.add_argument("--param", action="append", help="NAME=VALUE (JSON or text) for the notebook; repeatable")
    create.add_argument("--parameters", help="the notebook's parameters as a JSON object")
    create.add_argument("--job-timeout", type=float, help="the job's time limit in seconds (default 3600)")
    create.add_argument("--eval-file", help="target: an evaluation run, a YAML/JSON file with the run's body")
    create.add_argument("--missed", choices=("skip", "run_once", "catch_up"), help="ticks missed while down")
    create.add_argument("--max-catch-up", type=int, help="with --missed catch_up: how many (default 10)")
    create.add_argument("--overlap", choices=("allow", "skip", "queue"), help="while the previous firing runs")
    create.add_argument("--pass-rate-gate", type=float, metavar="RATE",
                        help="with --eval-file: announce a run that ends below this pass rate (0-1)")  # fmt: skip
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument("--description")
    create.add_argument("--json", action="store_true")
    create.set_defaults(run=wrap(cmd_create))

    for name, command, text in (("pause", cmd_pause, "stop firing until resumed"),
                                ("resume", cmd_resume, "fire again from the next tick"),
                                ("run-now", cmd_run_now, "fire once now; prints the job id"),
                                ("delete", cmd_delete, "delete a schedule (its jobs and runs stay)")):  # fmt: skip
        sub = schedules.add_parser(name, parents=[api], help=text)
        sub.add_argument("name")
        if name != "delete":
            sub.add_argument("--json", action="store_true")
        sub.set_defaults(run=wrap(command))

    firings = schedules.add_parser("firings", parents=[api], help="a schedule's firings, newest first")
    firings.add_argument("name")
    firings.add_argument("--outcome", choices=("started", "skipped", "queued", "failed"))
    firings.add_argument("--limit", type=int, default=50)
    firings.add_argument("--json", action="store_true")
    firings.set_defaults(run=wrap(cmd_firings))
