"""Kernels forked from the fork server are kernels like any other: exactly their environment, a process
group of their own, a fresh random state, killed by the pool, gone when the server goes, and the same
identity rules under the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.asynchronous.client import AsyncKernelClient

from agiflow_lab_workers.kernel_forks import ForkedKernel, ForkServer
from agiflow_lab_workers.kernel_pool import KernelPool
from agiflow_lab_workers.sandbox import KernelSandbox
from tests.support.polling import until

PROBE = (
    "import os, random, sys\n"
    "print(repr({'pid': os.getpid(), 'ppid': os.getppid(), 'pgid': os.getpgid(0), 'uid': os.getuid(),"
    " 'groups': os.getgroups(), 'cwd': os.getcwd(), 'env': dict(os.environ), 'random': random.random(),"
    " 'path0': sys.path[0], 'atomic': __import__('ipykernel.kernelapp').kernelapp.write_connection_file.__name__,"
    " 'mailbox': 'mailbox' in sys.modules, 'fds': sorted(int(f) for f in os.listdir('/proc/self/fd'))}))"
)


async def probe(kc: AsyncKernelClient) -> dict[str, Any]:
    msg_id = kc.execute(PROBE)
    while True:
        msg = await kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            return eval(msg["content"]["text"])  # noqa: S307  (our own probe's repr)
        assert msg["msg_type"] != "error", msg["content"]


async def test_a_forked_kernel_has_exactly_its_environment_its_own_group_and_random_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGIFLOW_DATABASE_URL", "postgresql://secret@db/agiflow")  # the worker's, never a kernel's
    pool = KernelPool(
        size=2, kernel_start="fork", cwd=tmp_path, env={"AGIFLOW_TEST_MARK": "1"}, fork_imports=["mailbox"]
    )
    async with pool:
        kms = [await pool.acquire(), await pool.acquire()]
        try:
            seen = [await probe(pool.client(km)) for km in kms]
            server_pid = seen[0]["ppid"]
            for km, info in zip(kms, seen, strict=True):
                assert isinstance(km.provisioner.process, ForkedKernel)  # white-box: it was forked
                assert info["ppid"] == server_pid != os.getpid() and info["pgid"] == info["pid"]
                assert "AGIFLOW_DATABASE_URL" not in info["env"] and info["env"]["AGIFLOW_TEST_MARK"] == "1"
                assert info["env"]["JPY_PARENT_PID"] == str(server_pid)
                assert info["path0"] == str(tmp_path) == info["cwd"]
                assert info["fds"][:3] == [0, 1, 2] and os.readlink(f"/proc/{info['pid']}/fd/0") == os.devnull
            assert seen[0]["random"] != seen[1]["random"]
            assert seen[0]["mailbox"] and seen[1]["mailbox"]  # the fork server's import, found loaded
            # its connection file is rewritten whole (the manager reads it while a fork is already that far)
            assert seen[0]["atomic"] == "write_atomically"
            assert "AGIFLOW_DATABASE_URL" not in psutil.Process(server_pid).environ()
        finally:
            for km in kms:
                await pool.discard(km)
        assert all(not psutil.pid_exists(info["pid"]) for info in seen)


async def test_kernels_end_when_the_fork_server_ends() -> None:
    """A worker killed with -9 closes the server's stdin; the server exits and its kernels follow."""
    async with KernelPool(size=1, kernel_start="fork") as pool:
        km = await pool.acquire()
        try:
            kernel = psutil.Process(km.provisioner.process.pid)
            server = kernel.parent()
            assert server is not None
            await pool._forks.close()  # white-box: as the worker's death would
            await until(lambda: gone(kernel), "the kernel to end after its fork server", timeout=15)
            assert await gone(server)
        finally:
            await pool.discard(km)


async def test_a_fork_server_that_died_is_started_again() -> None:
    async with KernelPool(size=0, kernel_start="fork") as pool:
        first = await pool.acquire()
        server = psutil.Process(first.provisioner.process.pid).parent()
        assert server is not None
        server.kill()
        await pool.discard(first)
        second = await pool.acquire()
        try:
            assert isinstance(second.provisioner.process, ForkedKernel)
            assert await second.is_alive() and psutil.Process(second.provisioner.process.pid).ppid() != server.pid
        finally:
            await pool.discard(second)


async def test_a_kernel_command_the_server_cannot_serve_starts_as_usual() -> None:
    with pytest.raises(ValueError, match="not module names"):
        ForkServer({}, imports=["os; import shutil"])
    assert ForkServer.serves(["/usr/bin/python3.11-other", "-m", "ipykernel_launcher", "-f", "k.json"]) is False
    assert ForkServer.serves(["/bin/sh", "-c", "echo"]) is False
    handle = ForkedKernel(os.getpid())
    assert handle.poll() is None  # our own pid: alive, and its pidfd says so
    with pytest.raises(Exception, match="Timeout|timed out"):
        handle.wait(0.01)


async def test_a_forked_kernel_under_the_sandbox_runs_as_its_leased_uid_without_groups() -> None:
    if os.geteuid() != 0:  # switching uids needs root (CI runs as root); otherwise the sandbox refuses outright
        with pytest.raises(RuntimeError, match="needs a worker running as root"):
            KernelSandbox()
        return
    sandbox = KernelSandbox()
    try:
        async with KernelPool(size=1, kernel_start="fork", sandbox=sandbox) as pool:
            km = await pool.acquire()
            try:
                info = await probe(pool.client(km))
                identity = pool._leased[km].identity
                assert identity is not None
                assert (info["uid"], info["groups"]) == (identity.uid, [])
                assert info["env"]["HOME"] == str(identity.home) == info["cwd"]
                assert psutil.Process(info["ppid"]).uids().real == 0  # the server; the kernel dropped root
            finally:
                await pool.discard(km)
    finally:
        sandbox.close()


async def gone(process: psutil.Process) -> bool:
    return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def test_a_fork_server_whose_worker_died_while_it_started_exits_quietly() -> None:
    """A worker killed while its fork server imports leaves it a closed pipe: it exits 0 without a traceback
    (one landed in the server log of every supervised worker killed early)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "agiflow_lab_workers.kernel_zygote"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None and server.stderr is not None
    server.stdout.close()  # the worker's end of the answers, gone before "ready"
    stderr = server.stderr.read().decode(errors="replace")
    assert server.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
