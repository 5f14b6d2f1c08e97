"""``python -m agiflow_lab_workers``: the same as ``agiflow-lab worker`` (used by the supervisor)."""

from __future__ import annotations

import argparse
import sys

from agiflow_lab_workers.cli import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agiflow-lab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["worker", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
