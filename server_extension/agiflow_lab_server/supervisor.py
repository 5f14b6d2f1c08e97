"""Worker subprocesses for a plain ``jupyter lab``: started with the server, restarted if they crash,
stopped (gracefully, then firmly) with it. Deployments at scale run workers on their own instead and
set the count to 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

RESTART_BACKOFF_MAX = 30.0


class WorkerSupervisor:
    def __init__(self, count: int, env: dict[str, str], args: list[str], stop_timeout: float = 20.0) -> None:
        self.count = count
        self.env = env
        self.args = args
        self.stop_timeout = stop_timeout
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._keep_running(i), name=f"agiflow-worker-{i}") for i in range(self.count)
        ]

    async def _keep_running(self, slot: int) -> None:
        backoff = 1.0
        while not self._stopping:
            env = {**os.environ, **self.env}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agiflow_lab_workers", *self.args, env=env, start_new_session=True
            )
            self.processes[slot] = proc
            started = asyncio.get_running_loop().time()
            code = await proc.wait()
            if self._stopping:
                return
            ran_for = asyncio.get_running_loop().time() - started
            backoff = 1.0 if ran_for > 60 else min(RESTART_BACKOFF_MAX, backoff * 2)
            log.warning("AGIFlow worker %s exited with %s; restarting in %.0fs", slot, code, backoff)
            await asyncio.sleep(backoff)

    async def stop(self) -> None:
        self._stopping = True
        procs = [p for p in self.processes.values() if p.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
