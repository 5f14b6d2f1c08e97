"""Kernels forked from a process that has imported the kernel stack already (``kernel_zygote``).

:class:`ForkServer` runs that process for a pool and asks it for kernels; :class:`ForkingProvisioner` is
the jupyter_client provisioner that uses it in place of ``Popen`` for ``python -m ipykernel_launcher``
commands of this interpreter (any other kernel command starts as usual); :class:`ForkedKernel` is the
``Popen``-shaped handle jupyter_client manages the kernel through. The kernel is not the worker's child,
so the handle holds a pidfd: signals go to exactly that process (no pid reuse race) and its exit is
seen the moment it happens. Its exit status belongs to its parent (the fork server), so ``returncode`` says
only that it ended: minus the last signal this handle sent, else 1.

A fork server that cannot start or has died is started again on the next kernel; if that fails too,
the kernel starts with ``Popen`` and the reason is logged once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner

log = logging.getLogger(__name__)

START_SECONDS = 60.0  # the fork server's imports (about a second when idle, several on a loaded machine)
CLOSE_SECONDS = 5.0
AVAILABLE = hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal")  # Linux 5.3+


class ForkServerError(RuntimeError):
    pass


class ForkedKernel:
    """A ``subprocess.Popen`` look-alike for a kernel the fork server started (see the module docstring)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._signal = 0
        try:
            self._fd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # ended (and was reaped) before we looked
            self._fd = None
            self.returncode = 1

    def poll(self) -> int | None:
        if self.returncode is None and self._fd is not None:
            readable, _, _ = select.select([self._fd], [], [], 0)
            if readable:
                self._ended()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self._fd is not None:
            readable, _, _ = select.select([self._fd], [], [], timeout)
            if not readable:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout or 0.0)
            self._ended()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._fd is not None:
            self._signal = sig
            signal.pidfd_send_signal(self._fd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _ended(self) -> None:
        self.returncode = -self._signal if self._signal else 1
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # type: ignore[arg-type]


class ForkServer:
    """One ``kernel_zygote`` process, started on first use and again if it has died.

    ``env`` is the whole environment it starts with (the kernels' allow-listed one: it must hold nothing a
    kernel may not see). ``user_site=False`` leaves the worker user's ``~/.local`` site-packages off
    ``sys.path``, for kernels that run as other uids (the sandbox) and have homes of their own. ``imports``:
    modules the server imports before its first fork, for every kernel; they must neither start threads nor
    seed a random generator of their own at import (numpy does: it stays a ``warm_imports`` module).
    """

    def __init__(self, env: Mapping[str, str], *, user_site: bool = True, imports: Sequence[str] = ()) -> None:
        if bad := [m for m in imports if not all(part.isidentifier() for part in m.split("."))]:
            raise ValueError(f"not module names: {bad}")
        self._env = dict(env)
        self._user_site = user_site
        self._imports = list(imports)
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()  # one request at a time on the pipe

    @staticmethod
    def serves(cmd: Sequence[str]) -> bool:
        """Whether ``cmd`` is an ipykernel of this interpreter, which a fork of the server is identical to."""
        return (
            AVAILABLE
            and len(cmd) >= 3
            and list(cmd[1:3]) == ["-m", "ipykernel_launcher"]
            and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
        )

    async def spawn(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None, uid: int | None, gid: int | None
    ) -> ForkedKernel:
        """A kernel with ``argv`` (what follows ``-m ipykernel_launcher``), exactly ``env``, in ``cwd``."""
        request = {"argv": list(argv), "env": dict(env), "cwd": cwd, "uid": uid, "gid": gid}
        async with self._lock:
            proc = await self._running()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                await proc.stdin.drain()
                reply = json.loads(await asyncio.wait_for(proc.stdout.readline(), START_SECONDS) or b"{}")
            except (OSError, ValueError, TimeoutError) as e:
                await self._stop(proc)
                raise ForkServerError(f"the kernel fork server stopped answering: {e!r}") from e
        if "pid" not in reply:
            raise ForkServerError(f"the kernel fork server could not fork: {reply.get('error', 'it exited')}")
        return ForkedKernel(int(reply["pid"]))

    async def close(self) -> None:
        async with self._lock:
            if self._proc is not None:
                await self._stop(self._proc)

    async def _running(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        if self._proc is not None:
            log.warning("the kernel fork server exited (%s); starting it again", self._proc.returncode)
        flags = [] if self._user_site else ["-s"]
        try:
            proc = self._proc = await asyncio.create_subprocess_exec(
                sys.executable, *flags, "-m", "agiflow_lab_workers.kernel_zygote", *self._imports,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self._env, start_new_session=True,
                cwd=str(Path.cwd()),
            )  # fmt: skip
        except OSError as e:  # out of processes or memory: kernels start with Popen meanwhile
            raise ForkServerError(f"the kernel fork server could not be started: {e!r}") from e
        assert proc.stdout is not None
        try:
            ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), START_SECONDS) or b"{}")
        except (ValueError, TimeoutError) as e:
            await self._stop(proc)
            raise ForkServerError(f"the kernel fork server did not start: {e!r}") from e
        if "ready" not in ready:
            await self._stop(proc)
            raise ForkServerError(f"the kernel fork server did not start (exit status {proc.returncode})")
        return proc

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        """End of stdin ends the server; its kernels follow (parent poller) unless the pool killed them."""
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), CLOSE_SECONDS)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class ForkingProvisioner(LocalProvisioner):  # type: ignore[misc]
    """``LocalProvisioner`` with its ``Popen`` replaced by a fork of :attr:`fork_server` where it serves."""

    fork_server: ForkServer | None = None
    _warned = False

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        server = self.fork_server
        if server is None or not server.serves(cmd) or kwargs.get("extra_groups", []) != []:
            return await super().launch_kernel(cmd, **kwargs)
        cwd = kwargs.get("cwd")
        try:
            process = await server.spawn(
                cmd[3:], kwargs["env"], str(cwd) if cwd is not None else None, kwargs.get("user"), kwargs.get("group")
            )
        except ForkServerError as e:
            if not ForkingProvisioner._warned:
                ForkingProvisioner._warned = True
                log.warning("%s; kernels start without it until it is back", e)
            return await super().launch_kernel(cmd, **kwargs)
        ForkingProvisioner._warned = False
        self.process = process  # type: ignore[assignment]  # Popen's shape, not its class
        self.pid = self.pgid = process.pid  # the kernel called setsid(): its pid is its group
        self.cwd = cwd or Path.cwd()
        return self.connection_info
