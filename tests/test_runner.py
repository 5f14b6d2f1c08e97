"""The notebook runner on real kernels and real notebooks: results, progress, live logs, failures,
cancel, timeouts, and single-use pooled kernels."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from agiflow_lab.notebook import RESULT_MIME_TYPE
from agiflow_lab_workers.kernel_pool import KernelPool
from agiflow_lab_workers.runner import NoEvents, NotebookRunner, RunRequest, RunResult, Stream

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


class Recorder:
    """RunEvents that remembers what arrived, and when."""

    def __init__(self, on_log: Callable[[str], None] | None = None) -> None:
        self.progress: list[tuple[int, int]] = []
        self.logs: list[tuple[float, Stream, str]] = []
        self.sequence: list[tuple[str, Any]] = []  # every callback, in arrival order
        self._on_log = on_log

    async def on_progress(self, cells_done: int, cells_total: int) -> None:
        self.progress.append((cells_done, cells_total))
        self.sequence.append(("progress", cells_done))

    async def on_log(self, stream: Stream, text: str) -> None:
        self.logs.append((time.monotonic(), stream, text))
        self.sequence.append(("log", text))
        if self._on_log:
            self._on_log(text)

    def stdout(self) -> str:
        return "".join(text for _, stream, text in self.logs if stream == "stdout")


@pytest.fixture(scope="module", params=["fork", "exec"])
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[KernelPool]:
    """Every runner test on kernels forked from the fork server (the worker's default) and on ``exec``'d ones."""
    async with KernelPool(size=2, kernel_start=request.param) as pool:
        yield pool


@pytest.fixture
def runner(pool: KernelPool) -> NotebookRunner:
    return NotebookRunner(pool)


def write_notebook(path: Path, *sources: str, parameters: str | None = None) -> Path:
    cells = []
    if parameters is not None:
        cells.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    cells += [new_code_cell(src) for src in sources]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


async def run(
    runner: NotebookRunner,
    notebook: Path,
    output: Path,
    events: Any = None,
    cancel: asyncio.Event | None = None,
    **request: Any,
) -> RunResult:
    job = RunRequest(input_path=notebook, output_path=output, **request)
    return await runner.run(job, events or NoEvents(), cancel or asyncio.Event())


def kernel_pid(events: Recorder) -> int:
    """sleep.ipynb prints 'sleeping N s in pid P'."""
    line = next(text for _, _, text in events.logs if "in pid" in text)
    return int(line.split("in pid")[1].split()[0])


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_hello_succeeds_with_its_parameters_and_returns_its_result(
    runner: NotebookRunner, tmp_path: Path
) -> None:
    out = tmp_path / "hello.out.ipynb"
    result = await run(runner, NOTEBOOKS / "hello.ipynb", out, parameters={"name": "Ada", "repeat": 2})

    assert result.status == "succeeded"
    assert result.error is None
    assert result.result == {"greeting": "Hello, Ada!", "repeat": 2}
    assert result.cells_done == result.cells_total == 5  # markdown, parameters, injected, greet, emit
    assert result.started_at <= result.finished_at
    nb = nbformat.read(out, as_version=4)
    injected = nb.cells[2]
    assert injected.metadata.tags == ["injected-parameters"]
    assert 'name = "Ada"' in injected.source and "repeat = 2" in injected.source
    assert nb.cells[3].outputs[0].text == "Hello, Ada!\nHello, Ada!\n"
    assert nb.cells[4].outputs[0].data[RESULT_MIME_TYPE] == {"greeting": "Hello, Ada!", "repeat": 2}
    assert nb.metadata.papermill.parameters == {"name": "Ada", "repeat": 2}
    assert [c.metadata.papermill.status for c in nb.cells] == ["completed"] * 5
    assert nb.metadata.language_info.name == "python"


async def test_parameters_are_injected_as_python_literals(runner: NotebookRunner, tmp_path: Path) -> None:
    value = {"quote": 'He said "hi"\n\\ café', "items": [1, 2.5, True, None], "nested": {"k": "v"}}
    notebook = write_notebook(
        tmp_path / "echo.ipynb",
        "from agiflow_lab.notebook import emit_result\nemit_result({'value': value})",
        parameters="value = None",
    )

    result = await run(runner, notebook, tmp_path / "out.ipynb", parameters={"value": value})

    assert result.status == "succeeded", result.error
    assert result.result == {"value": value}


async def test_progress_counts_every_cell_up_to_the_total(runner: NotebookRunner, tmp_path: Path) -> None:
    events = Recorder()

    await run(runner, NOTEBOOKS / "hello.ipynb", tmp_path / "out.ipynb", events)

    assert events.progress == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


async def test_log_lines_arrive_while_the_notebook_is_still_running(runner: NotebookRunner, tmp_path: Path) -> None:
    events = Recorder()

    result = await run(runner, NOTEBOOKS / "sleep.ipynb", tmp_path / "out.ipynb", events, parameters={"seconds": 1})

    assert result.status == "succeeded"
    _, stream, text = events.logs[0]
    assert stream == "stdout" and text.startswith("sleeping 1 s in pid")
    assert events.stdout().endswith("awake\n")
    # The sleeping cell counts as done only after its sleep; its first line was reported before that.
    sleep_cell_done = events.sequence.index(("progress", result.cells_total))
    first_log = next(i for i, (kind, _) in enumerate(events.sequence) if kind == "log")
    assert first_log < sleep_cell_done


async def test_output_notebook_is_saved_as_cells_run(runner: NotebookRunner, tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"

    def sleep_cell_status() -> str | None:
        try:
            return nbformat.read(out, as_version=4).cells[2].metadata.papermill.status
        except (OSError, IndexError, ValueError):
            return None

    running = asyncio.create_task(run(runner, NOTEBOOKS / "sleep.ipynb", out, parameters={"seconds": 2}))
    for _ in range(100):  # poll the file, as a reader of the report would
        if sleep_cell_status() == "running" or running.done():
            break
        await asyncio.sleep(0.05)

    assert not running.done()  # seen on disk while the sleep cell was executing
    assert (await running).status == "succeeded"
    assert sleep_cell_status() == "completed"


async def test_a_failing_cell_fails_the_run_and_the_report_shows_the_error(
    runner: NotebookRunner, tmp_path: Path
) -> None:
    out = tmp_path / "fail.out.ipynb"

    result = await run(runner, NOTEBOOKS / "fail.ipynb", out)

    assert result.status == "failed"
    assert result.error is not None
    assert result.error.cell_index == 1
    assert (result.error.ename, result.error.evalue) == ("ValueError", "bad input")
    tb = "\n".join(result.error.traceback)
    assert "raise ValueError(message)" in tb and "ValueError: bad input" in tb
    assert "\x1b[" not in tb
    assert result.cells_done == 1 and result.cells_total == 3
    nb = nbformat.read(out, as_version=4)
    assert "An Exception was encountered" in nb.cells[0].source  # papermill's banner ...
    assert 'id="papermill-error-cell"' in nb.cells[2].source  # ... and anchor above the failing cell
    assert nb.cells[3].outputs[0].output_type == "error"
    assert nb.cells[3].outputs[0].ename == "ValueError"
    assert nb.cells[4].outputs == []  # never reached
    assert nb.metadata.papermill.exception is True


async def test_cancel_stops_a_sleeping_kernel_within_seconds(runner: NotebookRunner, tmp_path: Path) -> None:
    cancel = asyncio.Event()

    def cancel_once_sleeping(text: str) -> None:
        if "sleeping" in text:
            cancel.set()

    events = Recorder(on_log=cancel_once_sleeping)
    out = tmp_path / "out.ipynb"

    async with asyncio.timeout(20):  # far less than the 30 s sleep: the kernel was stopped, not waited for
        result = await run(runner, NOTEBOOKS / "sleep.ipynb", out, events, cancel, parameters={"seconds": 30})

    assert result.status == "cancelled"
    assert process_gone(kernel_pid(events))
    nb = nbformat.read(out, as_version=4)
    assert "was cancelled" in nb.cells[0].source
    assert "sleeping 30 s" in nb.cells[4].outputs[0].text  # what the cell printed before it was stopped


async def test_the_whole_job_timeout_stops_the_run(runner: NotebookRunner, tmp_path: Path) -> None:
    events = Recorder()

    async with asyncio.timeout(20):  # the 30 s sleep is cut off by the 2 s job timeout
        result = await run(
            runner, NOTEBOOKS / "sleep.ipynb", tmp_path / "out.ipynb", events, parameters={"seconds": 30}, timeout=2
        )

    assert result.status == "timed_out"
    assert result.error is not None
    assert (result.error.ename, result.error.cell_index) == ("JobTimeout", 2)
    assert process_gone(kernel_pid(events))


async def test_the_per_cell_timeout_times_out_the_run(runner: NotebookRunner, tmp_path: Path) -> None:
    result = await run(
        runner, NOTEBOOKS / "sleep.ipynb", tmp_path / "out.ipynb", parameters={"seconds": 30}, cell_timeout=1
    )

    assert result.status == "timed_out"
    assert result.error is not None
    assert (result.error.ename, result.error.cell_index) == ("CellTimeoutError", 2)


async def test_each_job_gets_a_fresh_kernel_and_nothing_leaks(runner: NotebookRunner, tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "state.ipynb",
        "import os\nfrom agiflow_lab.notebook import emit_result\n"
        "leaked = 'job_secret' in globals()\njob_secret = 42\n"
        "emit_result({'pid': os.getpid(), 'leaked': leaked})",
    )

    first = await run(runner, notebook, tmp_path / "1.ipynb")
    second = await run(runner, notebook, tmp_path / "2.ipynb")

    assert first.result["pid"] != second.result["pid"]
    assert first.result["leaked"] is False and second.result["leaked"] is False
    assert process_gone(first.result["pid"]) and process_gone(second.result["pid"])


async def test_job_env_and_cwd_reach_a_pre_started_kernel_and_stay_out_of_the_report(
    runner: NotebookRunner, tmp_path: Path
) -> None:
    notebook = write_notebook(
        tmp_path / "env.ipynb",
        "import os\nfrom agiflow_lab.notebook import emit_result\n"
        "emit_result({'job': os.environ['AGIFLOW_JOB_ID'], 'key_length': len(os.environ['AGIFLOW_API_KEY']),"
        " 'cwd': os.getcwd()})",
    )
    (workdir := tmp_path / "work").mkdir()
    out = tmp_path / "out.ipynb"
    env = {"AGIFLOW_JOB_ID": "job-123", "AGIFLOW_API_KEY": "sk-not-in-the-report"}

    result = await run(runner, notebook, out, env=env, cwd=workdir)

    assert result.status == "succeeded", result.error
    assert result.result == {"job": "job-123", "key_length": 20, "cwd": str(workdir)}
    report = out.read_text()
    assert "sk-not-in-the-report" not in report
    nb = json.loads(report)
    assert [c["execution_count"] for c in nb["cells"]] == [1]  # the silent set-up execution is not counted


async def test_sys_exit_zero_ends_the_run_successfully(runner: NotebookRunner, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "exit.ipynb", "import sys\nsys.exit(0)", "print('not reached')")
    events = Recorder()

    result = await run(runner, notebook, tmp_path / "out.ipynb", events)

    assert result.status == "succeeded"
    assert "not reached" not in events.stdout()


async def test_a_missing_notebook_fails_without_running_anything(runner: NotebookRunner, tmp_path: Path) -> None:
    result = await run(runner, tmp_path / "nope.ipynb", tmp_path / "out.ipynb")

    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.cell_index, result.error.ename) == (None, "FileNotFoundError")
    assert not (tmp_path / "out.ipynb").exists()


async def test_a_failing_event_callback_does_not_fail_the_run(runner: NotebookRunner, tmp_path: Path) -> None:
    class Broken(NoEvents):
        async def on_log(self, stream: Stream, text: str) -> None:
            raise ConnectionError("bus down")

    result = await run(runner, NOTEBOOKS / "hello.ipynb", tmp_path / "out.ipynb", Broken())

    assert result.status == "succeeded"


async def test_without_a_pool_kernels_start_on_demand(tmp_path: Path) -> None:
    async with KernelPool(size=0) as pool:
        result = await run(NotebookRunner(pool), NOTEBOOKS / "hello.ipynb", tmp_path / "out.ipynb")

    assert result.status == "succeeded"
    assert result.result == {"greeting": "Hello, world!", "repeat": 1}


async def test_a_kernel_that_died_in_the_pool_is_replaced(tmp_path: Path) -> None:
    async with KernelPool(size=1) as pool:
        idle = pool._slots[0].result().km  # white-box: the one idle kernel
        pid = idle.provisioner.process.pid
        psutil.Process(pid).kill()
        psutil.Process(pid).wait(5)

        km = await pool.acquire()
        try:
            assert km is not idle and await km.is_alive()
        finally:
            await pool.discard(km)


async def test_closing_the_pool_leaves_no_kernels_behind() -> None:
    pool = KernelPool(size=2)
    await pool.start()
    leased = await pool.acquire()
    pids = [leased.provisioner.process.pid] + [t.result().km.provisioner.process.pid for t in pool._slots if t.done()]

    await pool.close()

    assert all(process_gone(pid) for pid in pids)


async def test_warm_imports_are_loaded_but_leave_the_namespace_as_a_cold_kernel_has_it(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "warm.ipynb",
        "import sys\nfrom agiflow_lab.notebook import emit_result\n"
        "emit_result({'loaded': 'json.tool' in sys.modules, 'names': sorted(n for n in globals() if 'json' in n or"
        " 'agiflow_m' in n), 'count': get_ipython().execution_count})",
    )
    async with KernelPool(size=1, warm_imports=("json.tool", "no_such_module_here"), warm_after=0.2) as pool:
        await pool.wait_idle()  # the kernel sat idle for warm_after, then imported
        result = await run(NotebookRunner(pool), notebook, tmp_path / "out.ipynb")

    assert result.status == "succeeded", result.error  # a module that does not import is logged, not fatal
    assert result.result == {"loaded": True, "names": [], "count": 1}
    with pytest.raises(ValueError, match="not module names"):
        KernelPool(size=0, warm_imports=("os; import shutil",))


async def test_a_kernel_a_job_is_already_waiting_for_is_not_warmed(tmp_path: Path) -> None:
    """Warming is for kernels that wait in the pool; a job waiting for a kernel must not wait for imports."""
    notebook = write_notebook(
        tmp_path / "cold.ipynb",
        "import sys\nfrom agiflow_lab.notebook import emit_result\nemit_result({'loaded': 'mailbox' in sys.modules})",
    )
    async with KernelPool(size=0, warm_imports=("mailbox",)) as pool:
        result = await run(NotebookRunner(pool), notebook, tmp_path / "out.ipynb")

    assert result.status == "succeeded", result.error
    assert result.result == {"loaded": False}


async def test_a_kernel_taken_before_it_sat_idle_for_warm_after_is_not_warmed(tmp_path: Path) -> None:
    """A busy worker takes pooled kernels as soon as they are ready: importing into each would be CPU its
    jobs wait for. Only a kernel left idle for ``warm_after`` imports."""
    notebook = write_notebook(
        tmp_path / "busy.ipynb",
        "import sys\nfrom agiflow_lab.notebook import emit_result\nemit_result({'loaded': 'mailbox' in sys.modules})",
    )
    async with KernelPool(size=1, warm_imports=("mailbox",), warm_after=30) as pool:
        result = await run(NotebookRunner(pool), notebook, tmp_path / "out.ipynb")

    assert result.status == "succeeded", result.error
    assert result.result == {"loaded": False}


async def test_a_replacement_kernel_waits_to_warm_until_the_worker_has_room_for_a_job(tmp_path: Path) -> None:
    """With every kernel leased the worker takes no job, so the replacement kernel's imports would only take
    CPU from the jobs running (an evaluation run's model calls); it warms once a job has ended."""
    notebook = write_notebook(
        tmp_path / "warmed.ipynb",
        "import sys\nfrom agiflow_lab.notebook import emit_result\nemit_result({'loaded': 'mailbox' in sys.modules})",
    )
    async with KernelPool(size=1, warm_imports=("mailbox",), warm_after=0.2) as pool:
        leased = await pool.acquire()
        replacement = await asyncio.shield(pool._slots[0])
        await asyncio.sleep(1.0)  # five times warm_after: long enough for a kernel with room to have started warming
        assert not replacement.warm_started

        await pool.discard(leased)  # the job ended: now the worker could take one
        await pool.wait_idle()
        assert replacement.warm_started
        result = await run(NotebookRunner(pool), notebook, tmp_path / "out.ipynb")

    assert result.status == "succeeded", result.error
    assert result.result == {"loaded": True}
