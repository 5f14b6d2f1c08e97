"""Wall time of running notebooks/hello.ipynb: NotebookRunner with a kernel pool, without one, and plain
papermill as the baseline.

    python bench/runner.py [--runs 10]

"pool=2, paced" waits until the pool has refilled before each job (jobs arriving a second or more
apart); "pool=2, back-to-back" does not, so from the third job on each one waits for a replacement
kernel still starting. Times run from the call to ``run`` to its result, output notebook written.
Each runs with kernels forked from the fork server (``kernel_start=fork``, the worker's default) and
exec'd (``exec``); "CPU/job" is the whole machine's CPU time over the runs divided by the jobs (run it on
an otherwise idle machine): at saturation that, not the wall time, bounds how many jobs a worker runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import papermill
from figures import percentile

from agiflow_lab_workers.kernel_pool import KernelPool, KernelStart
from agiflow_lab_workers.runner import NoEvents, NotebookRunner, RunRequest

HELLO = Path(__file__).resolve().parents[1] / "notebooks" / "hello.ipynb"


def report(label: str, samples: list[float], cpu: float | None = None) -> None:
    per_job = f"   CPU/job {cpu / len(samples):6.3f} s" if cpu is not None else ""
    print(
        f"{label:<36} p50 {percentile(samples, 50):6.3f} s   p95 {percentile(samples, 95):6.3f} s"
        f"   mean {statistics.mean(samples):6.3f} s{per_job}   (n={len(samples)})"
    )


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used (user + nice + system), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(v) for v in fields[:3]) / os.sysconf("SC_CLK_TCK")


async def time_runs(
    runs: int,
    size: int,
    out: Path,
    before_each: Callable[[KernelPool], Awaitable[None]] | None = None,
    kernel_start: KernelStart = "exec",
) -> tuple[list[float], float]:
    """Wall time of each run, and the machine's CPU seconds over all of them, including starting the kernels
    that replace the ones they used (one each: the pool is as full after the runs as before)."""
    samples = []
    async with KernelPool(size=size, kernel_start=kernel_start) as pool:
        runner = NotebookRunner(pool)
        cpu_before = machine_cpu_seconds()
        for i in range(runs):
            if before_each:
                await before_each(pool)
            job = RunRequest(HELLO, out / f"pool{size}-{i}.ipynb", parameters={"name": "bench"})
            started = time.perf_counter()
            result = await runner.run(job, NoEvents(), asyncio.Event())
            samples.append(time.perf_counter() - started)
            assert result.status == "succeeded", result.error
        await pool.wait_idle()
        cpu = machine_cpu_seconds() - cpu_before
    return samples, cpu


async def wait_for_full_pool(pool: KernelPool) -> None:
    await pool.wait_idle()


def time_papermill(runs: int, out: Path) -> list[float]:
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        papermill.execute_notebook(
            str(HELLO), str(out / f"papermill-{i}.ipynb"), parameters={"name": "bench"}, progress_bar=False
        )
        samples.append(time.perf_counter() - started)
    return samples


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        time_papermill(1, out)  # warm imports for every contender
        for start in ("fork", "exec"):
            report(f"pool=2, paced, {start}", *await time_runs(runs, 2, out, wait_for_full_pool, start))
            report(f"pool=2, back-to-back, {start}", *await time_runs(runs, 2, out, kernel_start=start))
            report(f"pool=0 (kernel per job), {start}", *await time_runs(runs, 0, out, kernel_start=start))
        report("papermill.execute_notebook", time_papermill(runs, out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
