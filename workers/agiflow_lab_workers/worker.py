"""The worker process: takes jobs from the bus and runs their notebooks, and writes spans.

Scaling is horizontal: every worker joins the same consumer group, so starting another process adds
capacity. A worker heartbeats (which also keeps its bus leases alive); on SIGTERM it stops taking
work, gives running jobs ``drain_seconds`` to finish, and hands back the rest so another worker
starts them at once instead of after a lease expires.

Roles: ``jobs`` (the notebooks) and ``spans`` (the span writer, ``span_writer.py``). Every worker has
both by default, so a laptop's supervised workers store traces too; a deployment can run dedicated span
writers (``--roles spans``), which open nothing of the job side: no kernels, no job API, no registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import getpass
import importlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agiflow_lab.bus.base import Bus, Consumer, Delivery
from agiflow_lab.bus.factory import make_bus, worker_settings
from agiflow_lab.bus.outbox import OutboxRelay
from agiflow_lab.bus.topics import JOBS
from agiflow_lab.config import Settings
from agiflow_lab.core.shutdown import finish_within
from agiflow_lab.db.database import Database
from agiflow_lab.db.listen import ListenConn, Listener
from agiflow_lab.errors import Unavailable
from agiflow_lab.evals.run_access import JobContext
from agiflow_lab.evals.wire import ENV_TOKEN, ENV_URL
from agiflow_lab.jobs import ownership, store
from agiflow_lab.jobs.events import Finished, RunErrorData
from agiflow_lab.jobs.models import BUILTIN_PREFIX
from agiflow_lab.jobs.notebooks import builtin_path
from agiflow_lab.platform import Platform
from agiflow_lab.providers.service import ADAPTERS
from agiflow_lab.traces.store import PostgresSpanStore
from agiflow_lab_workers import scratch
from agiflow_lab_workers.events import JobEventSender
from agiflow_lab_workers.job_api import JobApi
from agiflow_lab_workers.kernel_pool import KernelPool, parse_kernel_start
from agiflow_lab_workers.roles import JOBS_ROLE, ROLES, SPANS_ROLE
from agiflow_lab_workers.runner import NotebookRunner, RunRequest, RunResult
from agiflow_lab_workers.sandbox import KernelSandbox
from agiflow_lab_workers.span_writer import SpanWriter

log = logging.getLogger(__name__)

GROUP = "agiflow-workers"
CLOSE_SECONDS = 2.0  # each close on the way out; a database or broker that is gone costs this, not a hang
POOL_CLOSE_SECONDS = 5.0  # kernels get a moment to shut down cleanly
JOIN_RETRY_MAX = 10.0
SPAN_BATCHES_IN_FLIGHT = 2  # each holds a database connection while it loads
# Every evaluation run imports these (0.5 s in a fresh kernel); pool kernels import them while they wait.
WARM_IMPORTS = ("agiflow_lab.evals.runner", "pandas")
# Imported once by the kernel fork server for every kernel (pandas is not: numpy seeds its global generator
# at import, which every fork would then share, and OpenBLAS may start threads).
FORK_IMPORTS = ("agiflow_lab.evals.runner",)
# Heartbeats in a row without a job before the vendor SDKs load (see _heartbeat).
SDK_PRELOAD_IDLE_BEATS = 2


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


def _load_vendor_sdks() -> None:
    started = time.perf_counter()
    for module in sorted(set(ADAPTERS.values())):
        try:
            importlib.import_module(module)
        except ImportError:
            log.warning("could not load %s; its connections will fail when used", module, exc_info=True)
    # Everything loaded so far lives as long as the process. Left to the collector, each full collection
    # walked those millions of objects again: 90-170 ms with the event loop stopped, every few seconds of
    # an evaluation run (model calls waiting behind it). Frozen, collections walk only newer objects.
    gc.freeze()
    log.info("vendor SDKs loaded in %.1f s", time.perf_counter() - started)


@dataclass
class WorkerOptions:
    database_url: str
    work_dir: Path
    bus: str | None = None
    kafka_bootstrap: str | None = None
    concurrency: int = 2
    pool_size: int | None = None
    topics: tuple[str, ...] = (JOBS,)
    group: str = GROUP
    member: str | None = None  # a stable name in the group across restarts (see Bus.consume)
    heartbeat_seconds: float = 2.0
    drain_seconds: float = 10.0
    worker_id: str = field(default_factory=default_worker_id)
    roles: tuple[str, ...] = ROLES
    # A supervisor's spare (``--standby``): start up to where the id and member matter, then wait for them.
    identity: Callable[[], Awaitable[tuple[str, str]]] | None = None


@dataclass(eq=False)
class Running:
    job_id: str
    attempt: int
    delivery: Delivery
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    handing_back: bool = False


class Worker:
    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.id = options.worker_id
        # The one Settings (environment), with the command line's bus choices over it.
        self.settings = worker_settings(Settings().with_env(), options.bus, options.kafka_bootstrap)
        spans = SPAN_BATCHES_IN_FLIGHT if SPANS_ROLE in options.roles else 0
        self.db = Database(options.database_url, min_size=1, max_size=options.concurrency * 2 + 4 + spans)
        self.running: dict[str, Running] = {}
        self.preload_sdks = False  # set once the worker is ready
        self.tasks: set[asyncio.Task[None]] = set()
        self.claiming: set[str] = set()  # jobs whose claim is in progress here
        self.checking_sandbox: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Start, take jobs until ``stop`` is set, drain, close.

        ``stop`` is honoured in every state of the database and the bus: a start-up still waiting for
        either is abandoned at once, and every close is bounded (``finish_within``), so a worker stops
        within seconds of SIGTERM when it has nothing to drain, even with the broker or database gone."""
        async with contextlib.AsyncExitStack() as closing:  # closes what was opened, newest first
            starting = asyncio.ensure_future(self._start(closing))
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not starting.done():
                    starting.cancel()
                    await asyncio.wait({starting}, timeout=CLOSE_SECONDS)
                    log.info("worker %s stopped while starting", self.id)
                    return
                consumer = starting.result()  # a start-up that failed ends the worker with its error
                if consumer is None:  # no jobs role: the span writer runs until its close
                    await stopping
                else:
                    await self._run_jobs(consumer, stopping)
            finally:
                stopping.cancel()
        log.info("worker %s stopped", self.id)

    async def _run_jobs(self, consumer: Consumer, stopping: Awaitable[object]) -> None:
        taking = asyncio.create_task(self._take_work(consumer), name="take-work")
        try:
            await stopping
        finally:
            taking.cancel()
            await asyncio.wait({taking}, timeout=CLOSE_SECONDS)
            await self._drain()

    async def _start(self, closing: contextlib.AsyncExitStack) -> Consumer | None:
        """Open everything in order, registering each close before the open it undoes; the jobs consumer,
        or None when this worker has no jobs role."""
        opts = self.options

        def closes(what: str, close: Callable[[], Awaitable[object]], seconds: float = CLOSE_SECONDS) -> None:
            closing.push_async_callback(_close, what, close, seconds)

        settings = self.settings
        await asyncio.to_thread(scratch.sweep)  # what workers killed before this one left in the temp dir
        pool = self._start_kernels(closes) if JOBS_ROLE in opts.roles else None
        closes("the database pool", self.db.close)
        await self.db.open()
        if opts.identity is not None:
            # A supervisor's spare: kernels filling and the database open. The bus waits (a spare would
            # report its outages too), and the rest needs to know who this worker is.
            self.id = opts.worker_id = (who := await opts.identity())[0]
            opts.member = who[1]
            log.info("spare worker taking over as %s", self.id)
        platform = Platform.build(settings, self.db, opts.database_url)
        bus = make_bus(settings, self.db)
        closes("the bus", bus.close)
        with contextlib.suppress(Unavailable):  # reported once by the bus's health; joining retries below
            await bus.start()
        relay = OutboxRelay(self.db, bus)
        closes("the outbox relay", relay.stop)
        relay.start()
        if SPANS_ROLE in opts.roles:
            # Joins in the background: neither start-up nor a job takeover waits for the spans topic.
            writer = SpanWriter(self.db, bus, PostgresSpanStore(self.db), batch_in_flight=SPAN_BATCHES_IN_FLIGHT,
                                member=None if opts.member is None else f"{opts.member}-spans")  # fmt: skip
            closes("the span writer", writer.stop, 2 * CLOSE_SECONDS)  # its consumer, then its task
            writer.start()
        if JOBS_ROLE not in opts.roles:
            log.info("worker %s ready: bus=%s roles=%s", self.id, type(bus).__name__, opts.roles)
            gc.freeze()  # as _load_vendor_sdks does for a jobs worker: long-lived objects out of every collection
            return None
        self.job_api = JobApi(self.db, platform.prompts, platform.models)
        closes("the job API", self.job_api.stop)
        await self.job_api.start()
        assert pool is not None
        self.runner = NotebookRunner(pool, autosave_seconds=2.0)
        async with self.db.connection() as conn:
            await store.register_worker(conn, self.id, socket.gethostname(), os.getpid(), list(opts.topics),
                                        opts.concurrency)  # fmt: skip
        closes("marking the worker stopped", self._mark_stopped, 1.0)  # its jobs were handed back already
        # Beating before joining: a join can take longer than the stale threshold (a Kafka rebalance), and
        # a worker that owns its first job must not look dead to the others while it starts it.
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
        closes("the heartbeat", functools.partial(_cancelled, heartbeat))
        if self.checking_sandbox is not None:
            await self.checking_sandbox  # a worker whose kernels cannot import agiflow_lab takes no job
        consumer = await self._join(bus)
        closes("the consumer", consumer.close)
        cancels = self._cancel_listener()
        closes("the cancel listener", cancels.stop)
        cancels.start()
        log.info("worker %s ready: bus=%s topics=%s concurrency=%s roles=%s", self.id, type(bus).__name__,
                 opts.topics, opts.concurrency, opts.roles)  # fmt: skip
        self.preload_sdks = True  # see _heartbeat
        return consumer

    def _start_kernels(self, closes: _Closes) -> KernelPool:
        """Start filling the kernel pool first of all: a job taken over from a dead worker often waits for
        the restarted one, so start-up time is takeover time, and kernels (the fork server's imports, then a
        fork each) take longest. They start while the worker opens the database, the bus and the job API.
        The sandbox's check that a kernel uid can import agiflow_lab runs alongside; the worker joins the bus
        only once it passed. A kernel that still cannot start fails the job that asked for it, with the
        reason, and is logged here."""
        settings, opts = self.settings, self.options
        sandbox = KernelSandbox.from_setting(settings.kernel_sandbox, settings.kernel_uids)
        if sandbox is not None:
            closes("the kernel sandbox", functools.partial(asyncio.to_thread, sandbox.close))
            sandbox.work_root = opts.work_dir
            self.checking_sandbox = asyncio.ensure_future(asyncio.to_thread(sandbox.check_python))
            closes("the sandbox check", functools.partial(_cancelled, self.checking_sandbox))
        else:
            log.warning("kernels run as this worker's user (%s): user code can read what it can read; see the "
                        "README's 'Running user code' section", getpass.getuser())  # fmt: skip
        pool = KernelPool(size=opts.concurrency if opts.pool_size is None else opts.pool_size, sandbox=sandbox,
                          warm_imports=WARM_IMPORTS, kernel_start=parse_kernel_start(settings.kernel_start),
                          fork_imports=FORK_IMPORTS)  # fmt: skip
        closes("the kernel pool", pool.close, POOL_CLOSE_SECONDS)
        filling = asyncio.ensure_future(pool.start())
        filling.add_done_callback(_log_pool_failure)
        closes("filling the kernel pool", functools.partial(_cancelled, filling))
        return pool

    async def _join(self, bus: Bus) -> Consumer:
        """A started consumer; while the bus cannot be reached, try again on a capped backoff."""
        opts = self.options
        failures = 0
        while True:
            consumer = bus.consume(opts.topics, opts.group, max_in_flight=opts.concurrency, member=opts.member)
            try:
                await consumer.start()
                return consumer
            except Unavailable as exc:
                failures += 1
                bus.health.down(exc)
                await finish_within(CLOSE_SECONDS, consumer.close(), "a consumer that could not join")
                await asyncio.sleep(min(JOIN_RETRY_MAX, 0.5 * 2 ** (failures - 1)))

    async def _mark_stopped(self) -> None:
        async with self.db.connection() as conn:
            await store.worker_stopped(conn, self.id)

    async def _take_work(self, consumer: Consumer) -> None:
        async for delivery in consumer:
            task = asyncio.create_task(self._handle(delivery))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _drain(self) -> None:
        if not self.tasks:
            return
        log.info("worker %s finishing %d running job(s)", self.id, len(self.running))
        _, pending = await asyncio.wait(set(self.tasks), timeout=self.options.drain_seconds)
        if pending:
            for run in self.running.values():
                run.handing_back = True
                run.cancel.set()
            await asyncio.wait(pending, timeout=30)

    async def _handle(self, delivery: Delivery) -> None:
        job_id = str(delivery.message.payload.get("job_id", ""))
        # A second message for a job this worker is claiming or running (a rescue, a redelivery): a job's
        # own message and its rescue have different keys, so both can arrive at once, and a claim by the
        # job's current owner would take the job over from itself as a new attempt.
        if job_id in self.running or job_id in self.claiming:
            await _settle(delivery.ack())
            return
        self.claiming.add(job_id)
        try:
            outcome = await ownership.claim(self.db, job_id, self.id, stale_after=self.settings.worker_stale_seconds)
        except Exception as exc:
            log.warning("cannot claim job %s: %r", job_id, exc)
            await _settle(delivery.retry(f"claim failed: {exc}"))
            return
        finally:
            self.claiming.discard(job_id)
        if isinstance(outcome, str):
            log.info("job %s not run here: %s", job_id, outcome)
            await _settle(delivery.ack())
            return
        run = Running(job_id, outcome.attempt, delivery)
        self.running[job_id] = run
        try:
            await self._execute(run, outcome)
        except Exception as exc:  # our failure (database down, disk full), not the notebook's
            log.exception("job %s attempt %s could not be completed", job_id, run.attempt)
            await _settle(delivery.retry(f"worker error: {exc}"))
        finally:
            self.running.pop(job_id, None)

    async def _execute(self, run: Running, claim: ownership.Claim) -> None:
        job = claim.job
        events = JobEventSender(self.db, run.job_id, run.attempt, self.id)
        folder = self.options.work_dir / run.job_id / str(run.attempt)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            input_path = await self._input_path(job, claim, folder)
        except Exception as exc:
            await events.finished(Finished(status="failed", error=RunErrorData(ename=type(exc).__name__,
                                                                               evalue=str(exc))))  # fmt: skip
            await run.delivery.ack()
            return
        token = self.job_api.grant(JobContext(run.job_id, run.attempt, self.id, str(job["project"])))
        request = RunRequest(
            input_path=input_path,
            output_path=folder / "output.ipynb",
            parameters=job["parameters"],
            timeout=float(job["timeout_seconds"]),
            cwd=folder,
            env=self._kernel_env(run, job, token),
        )
        try:
            result = await self.runner.run(request, events, run.cancel)
        finally:
            await self.job_api.revoke(token)
        await events.close()
        if run.handing_back:
            await ownership.hand_back(self.db, run.job_id, self.id, run.attempt, f"worker {self.id} stopped")
            await run.delivery.retry("worker stopped before the job finished")
            return
        notebook = await asyncio.to_thread(_read_json, request.output_path)
        if notebook is not None:
            async with self.db.connection() as conn:
                await store.save_output(conn, run.job_id, run.attempt, notebook)
        await events.finished(_finished(result))
        await run.delivery.ack()
        await asyncio.to_thread(shutil.rmtree, self.options.work_dir / run.job_id, True)

    def _kernel_env(self, run: Running, job: dict[str, Any], token: str) -> dict[str, str]:
        """What a job's kernel knows about the platform: who it runs as and its job API token. Never the
        database URL or the secret key: built-in tasks obey the same rule as a user's notebook (the
        evaluation engine reaches its run through the job API)."""
        return {"AGIFLOW_JOB_ID": run.job_id, "AGIFLOW_JOB_ATTEMPT": str(run.attempt), "AGIFLOW_WORKER_ID": self.id,
                "AGIFLOW_PROJECT": str(job["project"]), ENV_URL: self.job_api.url, ENV_TOKEN: token}  # fmt: skip

    async def _input_path(self, job: dict[str, Any], claim: ownership.Claim, folder: Path) -> Path:
        notebook: str = job["notebook"]
        if notebook.startswith(BUILTIN_PREFIX):
            return builtin_path(notebook, internal=True)
        if claim.input_notebook is None:
            raise FileNotFoundError(f"job has no copy of {notebook}")
        path = folder / "input.ipynb"
        await asyncio.to_thread(path.write_text, json.dumps(claim.input_notebook))
        return path

    async def _heartbeat(self) -> None:
        failures = 0
        idle_beats = 0
        while True:
            # The vendor SDKs load on first use (a second each, on a thread: providers.load_adapter), which an
            # evaluation's first model calls would wait for. A ready worker that sat without a job for a few
            # beats loads them on a daemon thread instead: not while it starts, takes a job over or runs one
            # (the import holds the GIL for two CPU-seconds), and not at all if it is stopped first.
            idle = self.preload_sdks and not self.running and not self.claiming
            idle_beats = idle_beats + 1 if idle else 0
            if idle_beats >= SDK_PRELOAD_IDLE_BEATS:
                self.preload_sdks = False
                threading.Thread(target=_load_vendor_sdks, name="load-vendor-sdks", daemon=True).start()
            try:
                async with self.db.connection() as conn:
                    await store.heartbeat(conn, self.id, len(self.running))
                for run in list(self.running.values()):
                    if not run.delivery.settled:  # a job that just finished is acked before it leaves running
                        await run.delivery.extend()
                if self.running:
                    for job_id in await ownership.cancel_requested(self.db, list(self.running)):
                        self._cancel(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1  # an outage is logged when it starts and when it ends, not every beat
                log.log(logging.WARNING if failures == 1 else logging.DEBUG, "heartbeat failed", exc_info=True)
            else:
                if failures:
                    log.warning("heartbeat back after %d failed attempts", failures)
                failures = 0
            await asyncio.sleep(self.options.heartbeat_seconds)

    def _cancel_listener(self) -> Listener:
        """Cancels reach a running job at once through NOTIFY; on every (re)connect the worker asks the
        database which of its jobs had a cancel requested meanwhile, since those notifications are lost."""

        async def resync(_conn: ListenConn) -> None:
            if self.running:
                for job_id in await ownership.cancel_requested(self.db, list(self.running)):
                    self._cancel(job_id)

        async def notified(job_id: str) -> None:
            self._cancel(job_id)

        return Listener(self.db, store.CANCEL_CHANNEL, on_connect=resync, on_notify=notified, name="cancel listener")

    def _cancel(self, job_id: str) -> None:
        run = self.running.get(job_id)
        if run is not None and not run.cancel.is_set():
            log.info("cancelling job %s", job_id)
            run.cancel.set()


class _Closes(Protocol):
    """Registers ``close`` (bounded by ``seconds``) to run when the worker stops, newest first."""

    def __call__(self, what: str, close: Callable[[], Awaitable[object]], seconds: float = ...) -> None: ...


async def _close(what: str, close: Callable[[], Awaitable[object]], seconds: float) -> None:
    await finish_within(seconds, close(), what)


def _log_pool_failure(filling: asyncio.Future[None]) -> None:
    if not filling.cancelled() and (exc := filling.exception()) is not None:
        log.error("the kernel pool could not start a kernel: %s", exc, exc_info=exc)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _finished(result: RunResult) -> Finished:
    return Finished(
        status=result.status,
        error=None if result.error is None else RunErrorData(**asdict(result.error)),
        result=result.result,
        cells_done=result.cells_done,
        cells_total=result.cells_total,
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return None


async def _settle(action: Any) -> None:
    try:
        await action
    except Exception:  # the message will be redelivered; the claim makes that safe
        log.warning("could not settle a delivery", exc_info=True)
