"""Start-up cost: how long importing the server extension adds to a Jupyter server's start.

Jupyter imports ``jupyter_server.serverapp`` first and the extension after it, so the figure that
matters is the extension's import *on top of* jupyter_server: each run is a fresh interpreter that
imports ``--after`` (default ``jupyter_server.serverapp``), then times ``import <module>`` with
``time.perf_counter``. The median of ``--runs`` is printed, then one ``python -X importtime`` run,
cut to what the module's import added, listing the modules with the largest cumulative time.

    python bench/startup.py [--runs 7] [--top 15] [--module agiflow_lab_server] [--after jupyter_server.serverapp]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMED = """
import time
import {after}
wall, cpu = time.perf_counter(), time.process_time()
import {module}
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


@dataclass(frozen=True)
class ImportLine:
    name: str
    depth: int
    self_us: int
    cumulative_us: int


def timed_import(module: str, after: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``import module`` in a fresh interpreter that has already imported ``after``.
    CPU time is the steadier figure on a busy machine; wall time is what a user waits."""
    out = subprocess.run(
        [sys.executable, "-c", TIMED.format(module=module, after=after)],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall, cpu = out.stdout.split()[-2:]
    return float(wall), float(cpu)


def import_profile(module: str, after: str) -> list[ImportLine]:
    """``-X importtime`` lines of the imports ``module`` added (those reported after ``after`` completed)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {after}; import {module}"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    lines: list[ImportLine] = []
    for raw in err.splitlines():
        if not raw.startswith("import time:") or "cumulative" in raw:
            continue
        self_us, cumulative_us, name = raw.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip())) // 2
        lines.append(ImportLine(name.strip(), depth, int(self_us), int(cumulative_us)))
    # importtime reports an import when it completes; ``after`` completes at depth 0 before ``module`` starts.
    start = next(i for i, line in enumerate(lines) if line.name == after and line.depth == 0) + 1
    return lines[start:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--module", default="agiflow_lab_server")
    parser.add_argument("--after", default="jupyter_server.serverapp")
    args = parser.parse_args()

    runs = [timed_import(args.module, args.after) for _ in range(args.runs)]
    for label, values in (("wall", sorted(r[0] for r in runs)), ("cpu", sorted(r[1] for r in runs))):
        print(f"import {args.module} after {args.after}, {label}: median {statistics.median(values) * 1000:.0f} ms "
              f"(min {values[0] * 1000:.0f}, max {values[-1] * 1000:.0f}; {args.runs} fresh interpreters)")  # fmt: skip

    lines = import_profile(args.module, args.after)
    total = next((line.cumulative_us for line in lines if line.name == args.module and line.depth == 0), 0)
    print(
        f"\n-X importtime, one run: {args.module} {total / 1000:.0f} ms cumulative; top {args.top} by cumulative time"
    )
    print(f"{'cumulative ms':>14} {'self ms':>8}  module")
    for line in sorted(lines, key=lambda entry: entry.cumulative_us, reverse=True)[: args.top]:
        print(f"{line.cumulative_us / 1000:>14.1f} {line.self_us / 1000:>8.1f}  {'  ' * line.depth}{line.name}")


if __name__ == "__main__":
    main()
