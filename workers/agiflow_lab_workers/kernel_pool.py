"""A small pool of pre-started, single-use Jupyter kernels.

Starting an IPython kernel and waiting until it answers costs about a second; a job that runs a trivial
notebook takes a tenth of that. The pool keeps ``size`` kernels started and *ready* (``wait_for_ready``
has passed, so the IOPub subscription is live) and hands each one to exactly one job. The job's runner
calls :meth:`KernelPool.discard` afterwards: kernels are never reused, so no state leaks between jobs.
Every :meth:`KernelPool.acquire` immediately starts a replacement in the background. The kernel's
ready client goes with it (:meth:`KernelPool.client`): ``wait_for_ready`` on a fresh client drains IOPub
for at least 0.2 s, most of a trivial job's run time. ``discard`` SIGKILLs the kernel's process group.

Kernels get CurveZMQ transport encryption when pyzmq supports it (``transport_encryption="auto"``).

Environment: a kernel gets an allow-listed part of the worker's environment (``kernel_environment``:
never the database URL, the secret key or a Jupyter token) plus the pool's ``env`` when it starts. A
pooled kernel starts before its job is known, so per-job variables (``AGIFLOW_JOB_ID``, the job token)
cannot be passed at launch; the runner sets them with a silent set-up execution (``os.environ.update``
and ``os.chdir``) before the first cell. See ``agiflow_lab_workers.runner``.

With a :class:`~agiflow_lab_workers.sandbox.KernelSandbox`, every kernel runs as a uid of its own (see
that module); ``admit`` hands it its job's folder.

``kernel_start="fork"`` forks kernels from a process that has imported the kernel stack once
(``kernel_forks``): a kernel then costs about a tenth of the CPU of ``exec`` (``python -m
ipykernel_launcher``), the default for a pool used as a library. ``fork_imports`` are imported by the
fork server, once for all kernels (see ``ForkServer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager

from agiflow_lab.config import CHOICES
from agiflow_lab_workers.kernel_forks import ForkingProvisioner, ForkServer
from agiflow_lab_workers.sandbox import KernelIdentity, KernelSandbox
from agiflow_lab_workers.scratch import KERNEL_SOCKETS, Scratch

log = logging.getLogger(__name__)

# How long a pooled kernel waits for a job, while the worker has room for one, before it imports ``warm_imports``.
WARM_AFTER_SECONDS = 1.0

# jupyter_client >= 8.10 can give kernels CurveZMQ keys (and ipykernel warns about plain TCP without them).
_HAS_TRANSPORT_ENCRYPTION = AsyncKernelManager.class_traits().get("transport_encryption") is not None


@dataclass
class _Kernel:
    km: AsyncKernelManager
    kc: AsyncKernelClient | None = None
    identity: KernelIdentity | None = None
    sockets: Scratch | None = None
    warming: asyncio.Task[None] | None = None  # waits for the kernel to sit idle, then imports
    warm_started: bool = False  # the imports are executing: a job waits for them rather than interrupt


def _sockets_dir(identity: KernelIdentity | None) -> Scratch:
    """A private directory for the kernel's ZeroMQ sockets (``ipc`` transport).

    TCP ports are picked by binding a free port, closing it and telling the kernel to bind it: under load
    another process (another worker's kernel) takes it in between and the kernel dies with "Address already
    in use". Unix sockets in a directory of the kernel's own cannot collide. The path stays short (Unix socket
    paths are limited to 107 bytes), and only the kernel's uid (and the root worker) can reach it."""
    sockets = Scratch(KERNEL_SOCKETS)
    if identity is not None:
        os.chown(sockets.path, identity.uid, identity.gid)
    return sockets


class _SandboxedKernelManager(AsyncKernelManager):  # type: ignore[misc]
    """Writes the connection file into the kernel's own home, readable by the kernel's uid only."""

    owner: KernelIdentity | None = None
    sockets: Scratch | None = None

    def write_connection_file(self, **kwargs: object) -> None:
        super().write_connection_file(**kwargs)
        if self.owner is not None:
            os.chown(self.connection_file, self.owner.uid, self.owner.gid)


class KernelPool:
    """Pre-started, single-use kernels. ``size=0`` starts every kernel on demand (no pool).

    ``env`` is added to the worker's environment for every kernel; ``cwd`` is where kernels start
    (the runner moves each one to its job's directory).
    """

    def __init__(
        self,
        size: int = 2,
        kernel_name: str = "python3",
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        extra_arguments: Sequence[str] = (),
        transport_encryption: Literal["disabled", "auto", "required"] | None = None,
        sandbox: KernelSandbox | None = None,
        warm_imports: Sequence[str] = (),
        warm_after: float = WARM_AFTER_SECONDS,
        kernel_start: KernelStart = "exec",
        fork_imports: Sequence[str] = (),
    ) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        if kernel_start not in ("fork", "exec"):
            raise ValueError(f"kernel_start must be fork or exec, not {kernel_start!r}")
        self.size = size
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        # CurveZMQ on the kernel's sockets when pyzmq has it and the kernelspec declares support.
        self.transport_encryption = transport_encryption or ("auto" if zmq.has("curve") else "disabled")
        self._env = dict(env or {})
        self._cwd = os.fspath(cwd) if cwd is not None else None
        self._extra_arguments = list(extra_arguments)
        self.sandbox = sandbox
        self._warm_code = _warm_code(warm_imports)
        self.warm_after = warm_after
        self._forks = (
            ForkServer({**kernel_environment(os.environ), **self._env}, user_site=sandbox is None, imports=fork_imports)
            if kernel_start == "fork"
            else None
        )
        self._slots: deque[asyncio.Task[_Kernel]] = deque()
        self._leased: dict[AsyncKernelManager, _Kernel] = {}
        self._room = asyncio.Event()  # set while fewer kernels are leased than the pool holds: see _warm_when_idle
        self._room.set()
        # Remembered (weakly) so that a second discard of the same kernel is a no-op.
        self._discards: weakref.WeakKeyDictionary[AsyncKernelManager, asyncio.Task[None]] = weakref.WeakKeyDictionary()
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False

    async def __aenter__(self) -> KernelPool:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def idle(self) -> int:
        """Kernels started, ready and waiting for a job."""
        return sum(1 for t in self._slots if t.done() and not t.cancelled() and t.exception() is None)

    async def start(self) -> None:
        """Fill the pool and wait until every kernel is ready (start-up failures are raised)."""
        if self._closed:
            raise RuntimeError("kernel pool is closed")
        while len(self._slots) < self.size:
            self._slots.append(self._spawn_kernel())
        results = await asyncio.gather(*(asyncio.shield(t) for t in self._slots), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def wait_idle(self) -> None:
        """Wait until every slot has a ready kernel, warmed if the pool warms (benchmarks and tests use this)."""
        await asyncio.gather(*(asyncio.shield(t) for t in list(self._slots)), return_exceptions=True)
        warming = [
            t.result().warming for t in list(self._slots) if t.done() and not t.cancelled() and not t.exception()
        ]
        await asyncio.gather(*(asyncio.shield(w) for w in warming if w is not None), return_exceptions=True)

    async def acquire(self) -> AsyncKernelManager:
        """A started kernel that has answered ``kernel_info``, for exactly one job.

        Takes the oldest pooled kernel and starts its replacement at once. A kernel that died while
        waiting in the pool is thrown away and the next one taken. Pass the result to :meth:`discard`
        when the job ends; :meth:`client` gives its ready client.
        """
        if self._closed:
            raise RuntimeError("kernel pool is closed")
        for _ in range(self.size + 2):
            if self.size == 0:
                slot = self._spawn_kernel()
            else:
                if not self._slots:
                    self._slots.append(self._spawn_kernel())
                slot = self._slots.popleft()
                self._slots.append(self._spawn_kernel())
            try:
                kernel = await asyncio.shield(slot)
            except asyncio.CancelledError:
                # The caller gave up; the kernel may still come up. Never leak it.
                slot.add_done_callback(self._discard_when_started)
                raise
            try:
                await self._stop_warming(kernel)
                alive = await kernel.km.is_alive()
            except BaseException:
                self._shutdown_soon(kernel)
                raise
            if alive:
                self._leased[kernel.km] = kernel
                self._leases_changed()
                return kernel.km
            log.warning("pooled kernel %s died while idle; taking another", kernel.km.kernel_id)
            await self._shutdown(kernel)
        raise RuntimeError(f"kernels for {self.kernel_name!r} keep dying before they can be used")

    async def admit(self, km: AsyncKernelManager, folder: os.PathLike[str] | str) -> None:
        """Let the acquired kernel work in ``folder`` (its job's folder): with a sandbox, the kernel's
        uid gets it; otherwise nothing to do."""
        identity = self._leased[km].identity
        if self.sandbox is not None and identity is not None:
            await asyncio.to_thread(self.sandbox.admit, identity, Path(folder))

    def client(self, km: AsyncKernelManager) -> AsyncKernelClient:
        """The acquired kernel's client: channels started, ``wait_for_ready`` passed. Owned by the pool."""
        kc = self._leased[km].kc
        assert kc is not None
        return kc

    async def discard(self, km: AsyncKernelManager) -> None:
        """Kill the kernel now (process group, SIGKILL) and release its ports and connection file.

        Safe to call more than once and from several tasks at the same time.
        """
        task = self._discards.get(km)
        if task is None:
            kernel = self._leased.pop(km, None) or _Kernel(
                km, identity=getattr(km, "owner", None), sockets=getattr(km, "sockets", None)
            )
            self._leases_changed()
            task = self._discards[km] = asyncio.ensure_future(self._shutdown(kernel))
        await asyncio.shield(task)

    async def close(self) -> None:
        """Shut down idle kernels, kernels still starting, and kernels still leased to jobs."""
        self._closed = True
        slots, self._slots = list(self._slots), deque()
        for t in slots:
            if not t.done():
                t.cancel()  # _start_kernel kills what it had started
        for r in await asyncio.gather(*slots, return_exceptions=True):
            if isinstance(r, _Kernel):
                await self._shutdown(r)
        await asyncio.gather(*(self.discard(km) for km in list(self._leased)), return_exceptions=True)
        await asyncio.gather(*self._background, *list(self._discards.values()), return_exceptions=True)
        if self._forks is not None:
            await self._forks.close()

    # -- internals -------------------------------------------------------------------------------

    def _spawn_kernel(self) -> asyncio.Task[_Kernel]:
        task = asyncio.ensure_future(self._start_kernel())
        # Failures surface in acquire()/start(); this only silences "exception never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def _start_kernel(self) -> _Kernel:
        options: dict[str, Any] = (
            {"transport_encryption": self.transport_encryption} if _HAS_TRANSPORT_ENCRYPTION else {}
        )
        identity = await asyncio.to_thread(self.sandbox.lease) if self.sandbox is not None else None
        env = {**kernel_environment(os.environ), **self._env}
        launch: dict[str, Any] = {"cwd": self._cwd}
        if identity is not None:
            assert self.sandbox is not None
            options["connection_file"] = str(identity.home / "kernel.json")
            env.update(self.sandbox.env(identity))
            launch = {"cwd": str(identity.home), **self.sandbox.popen_options(identity)}
        sockets = _sockets_dir(identity)
        km = _SandboxedKernelManager(
            kernel_name=self.kernel_name, transport="ipc", ip=str(sockets.path / "k"), **options
        )
        km.owner, km.sockets = identity, sockets
        if self._forks is not None:
            km.kernel_id = str(uuid.uuid4())
            km.provisioner = ForkingProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
            km.provisioner.fork_server = self._forks
        kc: AsyncKernelClient | None = None
        try:
            args = list(self._extra_arguments)
            if km.ipykernel and not any(a.startswith("--HistoryManager.hist_file") for a in args):
                args.append("--HistoryManager.hist_file=:memory:")  # no shared SQLite history file
            await km.start_kernel(env=env, extra_arguments=args, **launch)
            kc = km.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=self.startup_timeout)
            kc.allow_stdin = False
            kernel = _Kernel(km, kc, identity, sockets)
            if self._warm_code:
                kernel.warming = asyncio.ensure_future(self._warm_when_idle(kernel))
            return kernel
        except BaseException:
            await asyncio.shield(self._shutdown(_Kernel(km, kc, identity, sockets)))
            raise

    def _leases_changed(self) -> None:
        if len(self._leased) < self.size:
            self._room.set()
        else:
            self._room.clear()

    async def _warm_when_idle(self, kernel: _Kernel) -> None:
        """Warm a kernel only once it has waited ``warm_after`` seconds for a job while the worker had room
        for one. A busy worker takes each kernel sooner than that, and every import would be CPU its jobs wait
        for (a forked kernel is ready in a tenth of a second; importing pandas costs several times that); an
        idle one warms them all. A kernel that replaced one a job took waits while every kernel is leased: the
        worker cannot take another job then, and its imports would run beside the jobs that are running (an
        evaluation run lost a tenth of its model-call rate to a pandas import in the replacement kernel)."""
        while True:
            await self._room.wait()
            await asyncio.sleep(self.warm_after)
            if self._room.is_set():
                break
        kernel.warm_started = True
        assert kernel.kc is not None
        try:
            await self._warm(kernel.kc)
        except Exception as exc:  # the kernel died or stopped answering: the job that takes it finds out
            log.warning("warming a kernel failed: %r", exc)

    @staticmethod
    async def _stop_warming(kernel: _Kernel) -> None:
        """For a job taking ``kernel``: imports not started are dropped; imports under way are waited for."""
        warming, kernel.warming = kernel.warming, None
        if warming is None or warming.done():
            return
        if kernel.warm_started:
            await asyncio.shield(warming)
        else:
            warming.cancel()

    async def _warm(self, kc: AsyncKernelClient) -> None:
        """Import what most jobs import while the kernel waits in the pool, not while a job waits for it.

        Silent and bound to no name, so a user's notebook sees the same namespace as in a cold kernel; a
        module that fails to import is logged and left for the job that needs it to report."""
        for code in self._warm_code:
            msg_id = kc.execute(code, silent=True, store_history=False)
            while (reply := await kc.get_shell_msg(timeout=self.startup_timeout))["parent_header"].get(
                "msg_id"
            ) != msg_id:
                pass
            if reply["content"]["status"] != "ok":
                log.warning("warming a kernel: %s: %s", reply["content"].get("ename"), reply["content"].get("evalue"))

    def _discard_when_started(self, slot: asyncio.Task[_Kernel]) -> None:
        if not slot.cancelled() and slot.exception() is None:
            self._shutdown_soon(slot.result())

    def _shutdown_soon(self, kernel: _Kernel) -> None:
        task = asyncio.ensure_future(self._shutdown(kernel))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _shutdown(self, kernel: _Kernel) -> None:
        if kernel.warming is not None:
            kernel.warming.cancel()
        try:
            await self._stop_kernel(kernel)
        finally:
            if kernel.identity is not None and self.sandbox is not None:
                await asyncio.to_thread(self.sandbox.release, kernel.identity)
            if kernel.sockets is not None:
                await asyncio.to_thread(kernel.sockets.remove)

    @staticmethod
    async def _stop_kernel(kernel: _Kernel) -> None:
        if kernel.kc is not None:
            with contextlib.suppress(Exception):
                kernel.kc.stop_channels()
        km = kernel.km
        try:
            if km.has_kernel:
                # SIGKILL the process group and watch it go at a finer grain than shutdown_kernel()'s
                # 0.1 s poll, which then only reaps it and releases its ports and connection file.
                with contextlib.suppress(Exception):
                    await km.signal_kernel(signal.SIGKILL)
                    for _ in range(100):
                        if not await km.is_alive():
                            break
                        await asyncio.sleep(0.005)
                await km.shutdown_kernel(now=True)
            else:
                await km.cleanup_resources()  # start-up failed half-way: connection file, ports
        except Exception:
            log.exception("could not shut down kernel %s", km.kernel_id)


# What a kernel inherits from the worker: the basics a Python process and its libraries need. Anything
# else (AGIFLOW_*, JUPYTER_TOKEN, JUPYTERHUB_*, cloud credentials, PG*) stays in the worker.
KERNEL_ENV_ALLOW = frozenset({
    "PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONHASHSEED",
    "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "HOME", "USER", "LOGNAME",
    "SHELL", "TMPDIR", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS", "MPLBACKEND", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
})  # fmt: skip
KERNEL_ENV_ALLOW_PREFIXES = ("LC_",)


KernelStart = Literal["fork", "exec"]


def parse_kernel_start(text: str) -> KernelStart:
    """The ``kernel_start`` setting (``AGIFLOW_KERNEL_START``), checked when the worker starts (its values
    are ``config.CHOICES``', which ``Settings`` checks too)."""
    value = text.strip().lower()
    if value not in CHOICES["kernel_start"]:
        raise ValueError(f"kernel start must be {' or '.join(CHOICES['kernel_start'])}, not {text!r}")
    return cast(KernelStart, value)


def _warm_code(modules: Sequence[str]) -> list[str]:
    """One statement per module (a failing import must not skip the others), binding no name."""
    if bad := [m for m in modules if not all(part.isidentifier() for part in m.split("."))]:
        raise ValueError(f"not module names: {bad}")
    return [f"__import__({m!r})" for m in modules]


def kernel_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of the worker's environment (see ``KERNEL_ENV_ALLOW``)."""
    return {k: v for k, v in env.items() if k in KERNEL_ENV_ALLOW or k.startswith(KERNEL_ENV_ALLOW_PREFIXES)}
