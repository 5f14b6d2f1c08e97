"""Worker subprocesses for a plain ``jupyter lab``: started with the server, restarted if they crash,
stopped (gracefully, then firmly) with it. Deployments at scale run workers on their own instead and
set the count to 0.

The supervisor knows at once when a worker dies, which nobody else can: the heartbeat threshold exists
for deaths nobody sees. So each child gets a worker id chosen here, and when the child exits,
``on_exit(worker_id)`` marks that worker stopped, which lets the dispatcher's rescue send its running
jobs back to the bus right away (the same path, and the same claim, as a rescue after a silent death,
so a job is never run twice). The first restart is immediate; repeated quick exits back off.

With ``standby`` each slot also keeps a spare: a worker process started with ``--standby``, which does its
imports, starts its kernels and opens the database, then waits on stdin for the id and member it is to run
as. A restart hands them to the spare (and starts the next spare) instead of starting a process from
nothing, so a job taken over from a dead worker waits only for the rest of a start-up (the bus)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable

from agiflow_lab.core.shutdown import finish_within

log = logging.getLogger(__name__)

RESTART_BACKOFF_MAX = 30.0
STEADY_SECONDS = 60.0  # a worker that ran this long before exiting is restarted at once, not backed off
ON_EXIT_SECONDS = 5.0


def new_worker_id(slot: int, prefix: str = "w") -> str:
    return f"{slot_member(slot, prefix)}-{uuid.uuid4().hex[:4]}"


def slot_member(slot: int, prefix: str = "w") -> str:
    """The slot's name in the consumer group: kept by its restarts, unique to this server process on this host
    (two servers on one host — JupyterHub users — must never share one: Kafka would fence one of them)."""
    return f"{socket.gethostname()}-{os.getpid()}-{prefix}{slot}"


class WorkerSupervisor:
    def __init__(
        self, count: int, env: dict[str, str], args: list[str], stop_timeout: float = 20.0,
        on_exit: Callable[[str], Awaitable[None]] | None = None, standby: bool = False, slot_prefix: str = "w",
    ) -> None:  # fmt: skip
        """``slot_prefix`` tells this supervisor's slots from another's in worker ids and member names."""
        self.count = count
        self.slot_prefix = slot_prefix
        self.env = env
        self.args = args
        self.stop_timeout = stop_timeout
        self.on_exit = on_exit
        self.standby = standby
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.spares: dict[int, asyncio.subprocess.Process] = {}
        self.worker_ids: dict[int, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep_running(i), name=f"agiflow-worker-{i}") for i in range(self.count)
        ]

    async def _keep_running(self, slot: int) -> None:
        quick_exits = 0
        while not self._stopping:
            worker_id = new_worker_id(slot, self.slot_prefix)
            proc = await self._launch(slot, worker_id)
            self.processes[slot], self.worker_ids[slot] = proc, worker_id
            if self.standby and not self._stopping:
                self.spares[slot] = await self._spawn("--standby", stdin=asyncio.subprocess.PIPE)
            started = asyncio.get_running_loop().time()
            code = await proc.wait()
            if code != 0 or not self._stopping:  # a clean exit on our SIGTERM has handed its jobs back itself
                await self._exited(worker_id)
            if self._stopping:
                return
            ran_for = asyncio.get_running_loop().time() - started
            quick_exits = 0 if ran_for > STEADY_SECONDS else quick_exits + 1
            delay = 0.0 if quick_exits <= 1 else min(RESTART_BACKOFF_MAX, 2.0 ** (quick_exits - 2))
            log.warning("AGIFlow worker %s exited with %s; restarting in %.0fs", slot, code, delay)
            await asyncio.sleep(delay)

    async def _launch(self, slot: int, worker_id: str) -> asyncio.subprocess.Process:
        """The slot's worker, running as ``worker_id``: its spare, told who it is, else a new process."""
        who = {"worker_id": worker_id, "member": slot_member(slot, self.slot_prefix)}
        spare = self.spares.pop(slot, None)
        if spare is not None and spare.returncode is None and spare.stdin is not None:
            try:
                spare.stdin.write(json.dumps(who).encode() + b"\n")
                await spare.stdin.drain()
                spare.stdin.close()
                return spare
            except (BrokenPipeError, ConnectionResetError):
                log.info("AGIFlow worker %s: its spare had exited; starting a new process", slot)
        return await self._spawn("--worker-id", worker_id, "--member", who["member"])

    async def _spawn(self, *args: str, stdin: int | None = None) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agiflow_lab_workers", *self.args, *args, env={**os.environ, **self.env},
            stdin=stdin, start_new_session=True,
        )  # fmt: skip

    async def _exited(self, worker_id: str) -> None:
        if self.on_exit is not None:
            await finish_within(ON_EXIT_SECONDS, self.on_exit(worker_id), f"handing back worker {worker_id}'s jobs")

    async def stop(self) -> None:
        self._stopping = True
        for spare in self.spares.values():  # a spare leaves when its stdin closes (and on SIGTERM, below)
            if spare.stdin is not None:
                spare.stdin.close()
        procs = [p for p in (*self.processes.values(), *self.spares.values()) if p.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        if self._tasks:  # let a killed worker's jobs be handed back before the backend stops
            await asyncio.wait(self._tasks, timeout=ON_EXIT_SECONDS)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
