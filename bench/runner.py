"""Wall time of running notebooks/hello.ipynb: NotebookRunner with a kernel pool, without one, and plain
papermill as the baseline.

    python bench/runner.py [--runs 10]

"pool=2, paced" waits until the pool has refilled before each job (jobs arriving a second or more
apart); "pool=2, back-to-back" does not, so from the third job on each one waits for a replacement
kernel still starting. Times run from the call to ``run`` to its result, output notebook written.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import papermill
from figures import percentile

from agiflow_lab_workers.kernel_pool import KernelPool
from agiflow_lab_workers.runner import NoEvents, NotebookRunner, RunRequest

HELLO = Path(__file__).resolve().parents[1] / "notebooks" / "hello.ipynb"


def report(label: str, samples: list[float]) -> None:
    print(
        f"{label:<28} p50 {percentile(samples, 50):6.3f} s   p95 {percentile(samples, 95):6.3f} s"
        f"   mean {statistics.mean(samples):6.3f} s   (n={len(samples)})"
    )


async def time_runs(
    runs: int, size: int, out: Path, before_each: Callable[[KernelPool], Awaitable[None]] | None = None
) -> list[float]:
    samples = []
    async with KernelPool(size=size) as pool:
        runner = NotebookRunner(pool)
        for i in range(runs):
            if before_each:
                await before_each(pool)
            job = RunRequest(HELLO, out / f"pool{size}-{i}.ipynb", parameters={"name": "bench"})
            started = time.perf_counter()
            result = await runner.run(job, NoEvents(), asyncio.Event())
            samples.append(time.perf_counter() - started)
            assert result.status == "succeeded", result.error
    return samples


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
        report("pool=2, paced", await time_runs(runs, 2, out, wait_for_full_pool))
        report("pool=2, back-to-back", await time_runs(runs, 2, out))
        report("pool=0 (kernel per job)", await time_runs(runs, 0, out))
        report("papermill.execute_notebook", time_papermill(runs, out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
