"""``agiflow-lab``: argument parsing, the commands, and the one mapping from errors to exit codes.

Exit codes scripts can rely on: 0 ok; 1 API or server error (unreachable, conflict, 5xx); 2 usage or
bad input (bad arguments, bad prompt files, no server configured); 3 authentication or permission;
4 not found; ``eval run`` adds 5 (pass rate below ``--min-pass-rate``) and 6 (the run failed or was cancelled).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

import psycopg

from agiflow_lab import __version__
from agiflow_lab.cli import db, evals, prompt_files, schedules, sync
from agiflow_lab.db.migrate import MigrationError
from agiflow_lab.errors import AgiflowError, Forbidden, InvalidInput, NotFound, Unauthenticated, ValidationFailed
from agiflow_lab.sdk.client import Client
from agiflow_lab.sdk.discovery import DiscoveryError

OK, API_ERROR, USAGE, AUTH, NOT_FOUND = 0, 1, 2, 3, 4


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def exit_code(exc: AgiflowError) -> int:
    if isinstance(exc, DiscoveryError | InvalidInput | ValidationFailed):
        return USAGE
    if isinstance(exc, Unauthenticated | Forbidden):
        return AUTH
    if isinstance(exc, NotFound):
        return NOT_FOUND
    return API_ERROR


def describe(exc: AgiflowError) -> str:
    lines = [str(exc)]
    for problem in exc.details.get("errors", []) if isinstance(exc.details.get("errors"), list) else []:
        lines.append(f"  {problem.get('field')}: {problem.get('message')}")
    return "\n".join(lines)


# --- commands ------------------------------------------------------------------------------------


def client(args: argparse.Namespace) -> Client:
    return Client(url=args.url, api_key=args.api_key, project=args.project, cache=False, timeout=args.timeout)


def folder(path: str, *, must_exist: bool) -> Path:
    result = Path(path)
    if must_exist and not result.is_dir():
        raise CliError(f"{path}: not a directory", USAGE)
    if not must_exist and result.exists() and not result.is_dir():
        raise CliError(f"{path}: exists and is not a directory", USAGE)
    return result


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    try:
        url, source = db.database_url(args.database_url)
        applied = db.upgrade(url)
    except (psycopg.Error, MigrationError, OSError) as exc:
        raise CliError(f"database upgrade failed: {' '.join(str(exc).split())}", API_ERROR) from exc
    if applied:
        out(f"applied migrations {', '.join(map(str, applied))} ({source})")
    else:
        out(f"database is up to date ({source})")
    return OK


def cmd_db_purge_traces(args: argparse.Namespace) -> int:
    if args.default_days < 1:
        raise CliError("--default-days must be at least 1", USAGE)
    try:
        url, source = db.database_url(args.database_url)
        purged = db.purge_traces_now(url, args.default_days)
    except (psycopg.Error, OSError) as exc:
        raise CliError(f"trace purge failed: {' '.join(str(exc).split())}", API_ERROR) from exc
    out(f"dropped {len(purged.partitions)} day partition(s), deleted {purged.spans} span(s), {purged.traces} "
        f"trace summary(ies), {purged.scores} score(s) ({source})")  # fmt: skip
    return OK


def cmd_prompts_push(args: argparse.Namespace) -> int:
    files, problems = prompt_files.load_folder(folder(args.dir, must_exist=True))
    if not files and not problems:
        raise CliError(f"{args.dir}: no prompt files (*.yaml, *.yml, *.json)", USAGE)
    if problems:
        for problem in problems:
            err(str(problem))
        raise CliError(f"nothing was pushed: {len(problems)} bad file(s)", USAGE)
    c = client(args)
    steps, problems = sync.plan_push(c, files, args.label)
    if problems:
        for problem in problems:
            err(str(problem))
        raise CliError(f"nothing was pushed: {len(problems)} file(s) cannot be applied", USAGE)
    counts: dict[str, int] = {}
    for step in steps:
        version = step.current if args.dry_run else sync.apply_step(c, step)
        out(step.describe(None if args.dry_run and step.action in ("create", "update") else version, args.dry_run))
        outcome = f"to {step.action}" if args.dry_run and step.action != "unchanged" else step.done
        counts[outcome] = counts.get(outcome, 0) + 1
    summary = ", ".join(f"{n} {done}" for done, n in sorted(counts.items()))
    out(f"{len(steps)} prompt(s): {summary}{' (dry run: nothing changed)' if args.dry_run else ''}")
    return OK


def cmd_prompts_pull(args: argparse.Namespace) -> int:
    written, skipped = sync.pull(client(args), folder(args.dir, must_exist=False), args.label, args.format, out)
    out(f"{written} prompt(s) written to {args.dir}" + (f", {skipped} skipped" if skipped else ""))
    return OK


def cmd_keys_create(args: argparse.Namespace) -> int:
    key = client(args).keys.create(args.name, args.role)
    if args.json:
        out(key.model_dump_json(indent=2))
        return OK
    out(key.secret)  # alone on stdout, so KEY=$(agiflow-lab keys create ...) captures just the key
    err(f"created {key.role} key {key.name!r} (id {key.id}) in project {args.project or 'default'}")
    err("store it now: the secret is not shown again")
    return OK


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = client(args).keys.list()
    if args.json:
        out(json.dumps([k.model_dump(mode="json") for k in keys], indent=2))
        return OK
    rows: list[tuple[str, ...]] = [("ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED")]
    for k in keys:
        when = [t.strftime("%Y-%m-%d %H:%M") if t else "-" for t in (k.created_at, k.last_used_at, k.revoked_at)]
        rows.append((k.id, k.name, k.role, *when))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return OK


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    key = client(args).keys.revoke(args.id)
    out(key.model_dump_json(indent=2) if args.json else f"revoked key {key.id} ({key.name!r}, {key.role})")
    return OK


# --- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agiflow-lab", description="AGIFlow Lab command line")
    parser.add_argument("--version", action="version", version=f"agiflow-lab {__version__}")
    commands = parser.add_subparsers(dest="group", required=True, metavar="{db,prompts,keys,eval,schedules,worker}")

    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--url", help="server URL (default: $AGIFLOW_URL, else the local Jupyter server)")
    api.add_argument("--api-key", help="project API key or Jupyter token (default: $AGIFLOW_API_KEY)")
    api.add_argument("--project", help="project slug (default: $AGIFLOW_PROJECT, else 'default')")
    api.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default: 30)")

    database = commands.add_parser("db", help="database maintenance").add_subparsers(dest="command", required=True)
    upgrade = database.add_parser("upgrade", help="apply pending migrations")
    upgrade.add_argument("--database-url", help="Postgres URL (default: $AGIFLOW_DATABASE_URL, else embedded)")
    upgrade.set_defaults(run=cmd_db_upgrade)
    purge = database.add_parser("purge-traces", help="forget traces past each project's retention")
    purge.add_argument("--database-url", help="Postgres URL (default: $AGIFLOW_DATABASE_URL, else embedded)")
    purge.add_argument("--default-days", type=int, default=30,
                       help="retention of projects without their own trace_retention_days (default: 30)")  # fmt: skip
    purge.set_defaults(run=cmd_db_purge_traces)

    prompts = commands.add_parser("prompts", help="prompts as files").add_subparsers(dest="command", required=True)
    push = prompts.add_parser("push", parents=[api], help="create or version prompts from a folder of files")
    push.add_argument("dir", help="folder of *.yaml, *.yml and *.json prompt files")
    push.add_argument("--label", help="compare with and move this label (default: compare with the newest)")
    push.add_argument("--dry-run", action="store_true", help="say what would change; change nothing")
    push.set_defaults(run=cmd_prompts_push)
    pull = prompts.add_parser("pull", parents=[api], help="write one file per prompt into a folder")
    pull.add_argument("dir", help="folder to write into (created if missing)")
    pull.add_argument("--label", help="pull the version this label points at (default: the newest)")
    pull.add_argument("--format", choices=("yaml", "json"), default="yaml", help="file format (default: yaml)")
    pull.set_defaults(run=cmd_prompts_pull)

    keys = commands.add_parser("keys", help="project API keys").add_subparsers(dest="command", required=True)
    create = keys.add_parser("create", parents=[api], help="create a key; prints the secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=("owner", "editor", "viewer"))
    create.add_argument("--json", action="store_true", help="print the key as JSON")
    create.set_defaults(run=cmd_keys_create)
    listing = keys.add_parser("list", parents=[api], help="list the project's keys (never their secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", parents=[api], help="revoke a key by id")
    revoke.add_argument("id", help="the key's id (or the whole agf_... key)")
    revoke.add_argument("--json", action="store_true")
    revoke.set_defaults(run=cmd_keys_revoke)

    evals.register(commands, api, lambda command: lambda args: command(args, client(args), out, err))
    schedules.register(commands, api, lambda command: lambda args: command(args, client(args), out, err))

    # Commands contributed by other packages of the distribution (``agiflow-lab worker``) register
    # through an entry point, so this package never imports them.
    for entry in entry_points(group="agiflow_lab.cli"):
        entry.load()(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors exit 2 here
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CliError as exc:
        err(f"agiflow-lab: error: {exc}")
        return exc.code
    except AgiflowError as exc:
        err(f"agiflow-lab: error: {describe(exc)}")
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
