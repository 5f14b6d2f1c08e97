"""Runs one notebook for one job: papermill's conventions, nbclient's async API, a single-use kernel.

``papermill.execute_notebook`` is synchronous and starts its own kernel, so the runner uses papermill's
pieces instead and drives nbclient inside the worker's event loop:

- parameters are injected by ``papermill.parameterize.parameterize_notebook`` (a cell tagged
  ``injected-parameters`` after the cell tagged ``parameters``, values written as Python literals);
- cell and notebook metadata, the error banner cells of a failed run and the "save after every cell"
  behaviour follow papermill (``NotebookExecutionManager``; ``autosave_seconds`` during long cells).
  Saves are coalesced and written atomically in a thread (``asyncio.to_thread``), so the loop never
  waits on the disk;
- cells run with ``NotebookClient.async_execute_cell`` on a kernel from the :class:`KernelPool`.
  Stream output is reported through ``RunEvents.on_log`` as each message arrives.

Per-job environment and working directory reach a pre-started kernel through a *silent* set-up
execution before the first cell (``os.environ.update(...)``, ``os.chdir(...)``; no execution count,
not in the history, not in the output notebook, so API keys are not written into the report).
Parameters are for what a reader of the report should see; ``env`` is for identity and secrets.

Cancel and the whole-job timeout: ``run`` races the execution task against ``cancel.wait()`` and the
deadline. When either wins, it kills the kernel (SIGKILL to its process group, via
``KernelPool.discard``), then cancels the execution task and writes the notebook as it stood, with a
banner saying why it stopped. A cell blocked in ``time.sleep(60)`` stops within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import ceil
from pathlib import Path
from typing import Any, Literal, Protocol

import nbformat
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from papermill.engines import NotebookExecutionManager
from papermill.execute import (
    ERROR_ANCHOR_MSG,
    ERROR_MARKER_TAG,
    ERROR_MESSAGE_TEMPLATE,
    ERROR_STYLE,
    prepare_notebook_metadata,
    remove_error_markers,
)
from papermill.inspection import _infer_parameters
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from agiflow_lab.notebook import RESULT_MIME_TYPE
from agiflow_lab_workers.kernel_pool import KernelPool

log = logging.getLogger(__name__)

Status = Literal["succeeded", "failed", "cancelled", "timed_out"]
Stream = Literal["stdout", "stderr"]

_ANSI = re.compile(r"\x1b(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")


@dataclass(frozen=True)
class RunRequest:
    """What to run. ``timeout`` bounds the whole job (seconds from the call to ``run``, kernel start
    included; ``None``: no limit); ``cell_timeout`` bounds each cell (nbclient's ``timeout``, rounded up
    to whole seconds). ``cwd`` defaults to the input notebook's folder. ``env`` is added to the kernel's
    environment and never written to the output notebook."""

    input_path: Path
    output_path: Path
    parameters: Mapping[str, Any] = field(default_factory=dict)
    cell_timeout: float | None = None
    timeout: float | None = None
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # accept str paths too
        object.__setattr__(self, "input_path", Path(self.input_path))
        object.__setattr__(self, "output_path", Path(self.output_path))
        if self.cwd is not None:
            object.__setattr__(self, "cwd", Path(self.cwd))


class RunEvents(Protocol):
    """Callbacks made while a notebook runs, in order, from a single task (a slow callback delays the
    ones after it, never the kernel). Exceptions raised by a callback are logged and dropped."""

    async def on_progress(self, cells_done: int, cells_total: int) -> None: ...

    async def on_log(self, stream: Stream, text: str) -> None: ...


class NoEvents:
    """``RunEvents`` that ignores everything."""

    async def on_progress(self, cells_done: int, cells_total: int) -> None:
        return None

    async def on_log(self, stream: Stream, text: str) -> None:
        return None


@dataclass(frozen=True)
class RunError:
    """Where and why a run stopped. ``cell_index`` counts the cells of the executed notebook (with the
    ``injected-parameters`` cell, before papermill's two banner cells are inserted); ``None`` when the run
    failed before any cell (notebook not found, kernel did not start)."""

    cell_index: int | None
    ename: str
    evalue: str
    traceback: list[str]
    execution_count: int | None = None


@dataclass(frozen=True)
class RunResult:
    status: Status
    cells_done: int
    cells_total: int
    started_at: datetime
    finished_at: datetime
    output_path: Path
    error: RunError | None = None
    result: Any = None  # the last value the notebook passed to agiflow_lab.notebook.emit_result


class NotebookRunner:
    """Executes notebooks on single-use kernels from ``pool``; several runs may share one runner."""

    def __init__(self, pool: KernelPool, *, autosave_seconds: float = 10.0) -> None:
        self.pool = pool
        self.autosave_seconds = autosave_seconds

    async def run(self, job: RunRequest, events: RunEvents, cancel: asyncio.Event) -> RunResult:
        started_at = datetime.now(UTC)
        state = _RunState()
        pump = _EventPump(events)
        body = asyncio.create_task(self._execute(job, state, pump))
        stop = asyncio.create_task(cancel.wait())
        try:
            done, _ = await asyncio.wait({body, stop}, timeout=job.timeout, return_when=asyncio.FIRST_COMPLETED)
            if body in done:
                if (exc := body.exception()) is not None:
                    state.fail(_error_from_exception(exc, state.current))
            else:
                state.stopped = "cancelled" if stop in done else "timed_out"
                await self._stop(body, state)
        except BaseException:
            # run() itself was cancelled (worker shutting down): leave no kernel behind.
            body.cancel()
            if state.km is not None:
                await asyncio.shield(self.pool.discard(state.km))
            await pump.close()
            raise
        finally:
            stop.cancel()
        if state.stopped == "timed_out":
            state.error = RunError(state.current, "JobTimeout", f"job exceeded its {job.timeout:g} s time limit", [])
        elif state.stopped == "cancelled":
            state.error = None
        status: Status = state.stopped or state.status
        result = await self._finish(state, status)
        await pump.close()
        return RunResult(
            status=status,
            cells_done=state.cells_done,
            cells_total=state.cells_total,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            output_path=job.output_path,
            error=state.error,
            result=result,
        )

    async def _stop(self, body: asyncio.Task[None], state: _RunState) -> None:
        """Kill the kernel first (the cell stops at once), then unwind the execution task."""
        if state.km is not None:
            await self.pool.discard(state.km)
        body.cancel()
        await asyncio.wait({body}, timeout=10)
        if not body.done():
            log.error("notebook execution task did not stop within 10 s of its kernel being killed")

    async def _execute(self, job: RunRequest, state: _RunState, pump: _EventPump) -> None:
        acquiring = asyncio.ensure_future(self.pool.acquire())  # overlaps kernel start with loading
        try:
            nb, cwd = await asyncio.to_thread(_prepare_notebook, job, self.pool.kernel_name)
            state.nb = nb
            state.cells_total = len(nb.cells)
            state.writer = _NotebookWriter(nb, job.output_path)
            state.manager = _ExecutionManager(nb, state.writer, self.autosave_seconds)
            state.manager.notebook_start()
            pump.progress(0, state.cells_total)
            state.km = await acquiring
        except BaseException:
            acquiring.cancel()  # still starting: the pool discards the kernel once it is up
            if acquiring.done() and not acquiring.cancelled() and acquiring.exception() is None:
                await self.pool.discard(acquiring.result())
            raise
        try:
            await self.pool.admit(state.km, cwd)
            await self._execute_cells(job, state, pump, state.km, cwd)
        finally:
            await self.pool.discard(state.km)

    async def _execute_cells(
        self, job: RunRequest, state: _RunState, pump: _EventPump, km: AsyncKernelManager, cwd: str
    ) -> None:
        nb, manager = state.nb, state.manager
        assert nb is not None and manager is not None
        client = _JobClient(
            nb,
            km,
            self.pool.client(km),
            on_stream=pump.log,
            manager=manager,
            kernel_name=self.pool.kernel_name,
            timeout=ceil(job.cell_timeout) if job.cell_timeout else None,
            startup_timeout=ceil(self.pool.startup_timeout),
            shutdown_kernel="immediate",
        )
        try:
            await client.prepare_kernel(cwd, job.env)
            for index, cell in enumerate(nb.cells):
                state.current = index
                try:
                    manager.cell_start(cell, index)
                    await client.async_execute_cell(cell, index)
                except CellExecutionError as exc:
                    manager.cell_exception(nb.cells[index], cell_index=index, exception=exc)
                    error = _error_from_cell(nb.cells[index], index, exc)
                    if error.ename == "SystemExit" and error.evalue in ("", "0"):
                        return  # papermill counts sys.exit(0) as success: stop here, no error
                    state.fail(error)
                    return
                except (CellTimeoutError, DeadKernelError) as exc:
                    manager.cell_exception(nb.cells[index], cell_index=index, exception=exc)
                    state.fail(_error_from_exception(exc, index, nb.cells[index]))
                    if isinstance(exc, CellTimeoutError):
                        state.status = "timed_out"
                    return
                finally:
                    manager.cell_complete(nb.cells[index], cell_index=index)
                state.cells_done += 1
                pump.progress(state.cells_done, state.cells_total)
            state.current = None
            client.set_widgets_metadata()
        finally:
            client.stop_watchdogs()

    async def _finish(self, state: _RunState, status: Status) -> Any:
        """Final notebook metadata, banner cells, last save; returns the emitted result."""
        nb, manager, writer = state.nb, state.manager, state.writer
        if nb is None or manager is None or writer is None:
            return None
        if state.stopped and state.current is not None:
            cell = nb.cells[state.current]
            if cell.metadata.papermill.get("status") == NotebookExecutionManager.RUNNING:
                manager.cell_exception(cell, cell_index=state.current)
                manager.cell_complete(cell, cell_index=state.current)
        manager.notebook_complete()
        if status != "succeeded":
            _add_banner(nb, status, state.error, state.current)
        try:
            await writer.flush()
        except OSError:
            log.exception("could not write the output notebook %s", writer.path)
        return _emitted_result(nb)


# -- execution pieces ------------------------------------------------------------------------------


@dataclass
class _RunState:
    """Shared between ``run`` and the execution task."""

    km: AsyncKernelManager | None = None
    nb: NotebookNode | None = None
    manager: _ExecutionManager | None = None
    writer: _NotebookWriter | None = None
    cells_total: int = 0
    cells_done: int = 0
    current: int | None = None  # the cell executing now
    status: Status = "succeeded"
    error: RunError | None = None
    stopped: Literal["cancelled", "timed_out"] | None = None

    def fail(self, error: RunError) -> None:
        self.status = "failed"
        self.error = error


class _JobClient(NotebookClient):
    """nbclient on a kernel it does not own, with a ready client handed over by the pool."""

    def __init__(
        self,
        nb: NotebookNode,
        km: AsyncKernelManager,
        kc: AsyncKernelClient,
        *,
        on_stream: Callable[[Stream, str], None],
        manager: _ExecutionManager,
        **kw: Any,
    ) -> None:
        super().__init__(nb, km=km, **kw)
        self.kc = kc
        self._on_stream = on_stream
        self._manager = manager
        self._watchdogs: set[asyncio.Task[Any]] = set()

    async def prepare_kernel(self, cwd: str, env: Mapping[str, str]) -> None:
        """Per-job environment and working directory, then ``language_info`` for the notebook."""
        assert self.kc is not None
        bad = [k for k, v in env.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"env values must be strings: {bad}")
        code = "import os as _agiflow_os\n"
        if env:
            code += f"_agiflow_os.environ.update({dict(env)!r})\n"
        code += f"_agiflow_os.chdir({cwd!r})\ndel _agiflow_os\n"
        reply = await self.async_wait_for_reply(self.kc.execute(code, silent=True, store_history=False))
        if reply is None or reply["content"]["status"] != "ok":
            content = reply["content"] if reply else {}
            raise RuntimeError(f"kernel set-up failed: {content.get('ename')}: {content.get('evalue')}")
        info = await self.async_wait_for_reply(self.kc.kernel_info())
        if info is not None and "language_info" in info["content"]:
            self.nb.metadata["language_info"] = info["content"]["language_info"]

    def process_message(self, msg: dict[str, Any], cell: NotebookNode, cell_index: int) -> NotebookNode | None:
        if msg["msg_type"] == "stream":
            self._on_stream(msg["content"]["name"], msg["content"]["text"])
        output = super().process_message(msg, cell, cell_index)
        self._manager.autosave_cell()
        return output

    async def _async_poll_kernel_alive(self) -> None:
        # nbclient leaves this 1 s poller running when a cell is interrupted; track it to stop it.
        task = asyncio.current_task()
        assert task is not None
        self._watchdogs.add(task)
        try:
            await super()._async_poll_kernel_alive()
        finally:
            self._watchdogs.discard(task)

    def stop_watchdogs(self) -> None:
        for task in list(self._watchdogs):
            task.cancel()


class _ExecutionManager(NotebookExecutionManager):  # type: ignore[misc]
    """papermill's metadata bookkeeping; saves go to the asynchronous writer instead of the disk."""

    def __init__(self, nb: NotebookNode, writer: _NotebookWriter, autosave_seconds: float) -> None:
        super().__init__(nb, output_path=None, progress_bar=False, autosave_cell_every=autosave_seconds)
        self.writer = writer

    def save(self, **kwargs: Any) -> None:
        if kwargs.get("nb") is not None:
            self.nb = kwargs["nb"]
        self.writer.request()
        self.last_save_time = self.now()


class _NotebookWriter:
    """Coalescing, atomic saves: serialise in the loop (the notebook is only touched there), write in a
    thread, keep at most one write in flight and one pending."""

    def __init__(self, nb: NotebookNode, path: Path) -> None:
        self.nb = nb
        self.path = path
        self._dirty = False
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def flush(self) -> None:
        self.request()
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
        if self._task is not None and (exc := self._task.exception()) is not None:
            raise exc

    async def _drain(self) -> None:
        while self._dirty:
            self._dirty = False
            await asyncio.to_thread(_write_atomic, self.path, nbformat.writes(self.nb))  # type: ignore[no-untyped-call]


class _EventPump:
    """Delivers ``RunEvents`` callbacks in order from one task, so producers never wait on them."""

    def __init__(self, events: RunEvents) -> None:
        self._events = events
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._deliver())

    def progress(self, cells_done: int, cells_total: int) -> None:
        self._queue.put_nowait(lambda: self._events.on_progress(cells_done, cells_total))

    def log(self, stream: Stream, text: str) -> None:
        self._queue.put_nowait(lambda: self._events.on_log(stream, text))

    async def close(self, grace: float = 5.0) -> None:
        self._queue.put_nowait(None)
        await asyncio.wait({self._task}, timeout=grace)
        if not self._task.done():
            log.warning("run event callbacks still busy after %.0f s; dropping the rest", grace)
            self._task.cancel()

    async def _deliver(self) -> None:
        while (call := await self._queue.get()) is not None:
            try:
                await call()
            except Exception:
                log.exception("run event callback failed")


# -- helpers ---------------------------------------------------------------------------------------


def _prepare_notebook(job: RunRequest, kernel_name: str) -> tuple[NotebookNode, str]:
    """Load and parameterise like ``papermill.execute_notebook``; also the job's absolute working
    directory. Blocking (file I/O): runs in a thread."""
    input_path, output_path = os.fspath(job.input_path), os.fspath(job.output_path)
    nb = load_notebook_node(input_path)
    spec = nb.metadata.get("kernelspec", {})
    language = spec.get("language") or nb.metadata.get("language_info", {}).get("name") or "python"
    if spec.get("name") and spec["name"] != kernel_name:
        log.warning("%s asks for kernel %r; running it on %r", input_path, spec["name"], kernel_name)
    if job.parameters:
        known = {p.name for p in _infer_parameters(nb, name=kernel_name, language=language)}
        for name in job.parameters:
            if name not in known:
                log.warning("%s: passed unknown parameter %r", input_path, name)
        nb = parameterize_notebook(nb, dict(job.parameters), kernel_name=kernel_name, language=language)
    nb = prepare_notebook_metadata(nb, input_path, output_path)
    result: NotebookNode = remove_error_markers(nb)
    return result, os.path.abspath(job.cwd or job.input_path.parent)


def _write_atomic(path: Path, text: str) -> None:
    """Readers of the report never see a half-written file (write a sibling, then rename over)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _strip_ansi(lines: list[str]) -> list[str]:
    return [_ANSI.sub("", line) for line in lines]


def _error_from_cell(cell: NotebookNode, index: int, exc: CellExecutionError) -> RunError:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return RunError(
                index, output["ename"], output["evalue"], _strip_ansi(output["traceback"]), cell.get("execution_count")
            )
    return RunError(index, exc.ename, exc.evalue, _strip_ansi(str(exc).splitlines()), cell.get("execution_count"))


def _error_from_exception(exc: BaseException, index: int | None, cell: NotebookNode | None = None) -> RunError:
    lines = traceback.format_exception(exc)
    return RunError(
        index, type(exc).__name__, str(exc), _strip_ansi(lines), cell.get("execution_count") if cell else None
    )


def _add_banner(nb: NotebookNode, status: Status, error: RunError | None, current: int | None) -> None:
    """papermill's banner: a message at the top and an anchor above the cell where the run stopped."""
    index = error.cell_index if error else current
    count = nb.cells[index].get("execution_count") if index is not None else None
    if status == "failed" and index is not None:
        message = ERROR_MESSAGE_TEMPLATE % str(count)
    else:
        what = {"failed": "failed before running a cell", "cancelled": "was cancelled", "timed_out": "timed out"}
        where = f" at '<a href=\"#papermill-error-cell\">In [{count}]</a>'" if index is not None else ""
        detail = f": {error.ename}: {error.evalue}" if error and index is None else ""
        message = f"<span {ERROR_STYLE}>The job {what.get(status, status)}{where}{detail}.</span>"
    cells = nb.cells
    if index is not None:
        anchor = nbformat.v4.new_markdown_cell(ERROR_ANCHOR_MSG)  # type: ignore[no-untyped-call]
        anchor.metadata["tags"] = [ERROR_MARKER_TAG]
        cells.insert(index, anchor)
    banner = nbformat.v4.new_markdown_cell(message)  # type: ignore[no-untyped-call]
    banner.metadata["tags"] = [ERROR_MARKER_TAG]
    cells.insert(0, banner)


def _emitted_result(nb: NotebookNode) -> Any:
    result: Any = None
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if output.get("output_type") in ("display_data", "execute_result") and RESULT_MIME_TYPE in data:
                result = data[RESULT_MIME_TYPE]
    return result
