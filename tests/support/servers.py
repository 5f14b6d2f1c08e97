"""Real processes for tests: the embedded Postgres and a Jupyter server with AGIFlow loaded."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psycopg

from agiflow_lab.db.embedded import start_embedded_postgres

if TYPE_CHECKING:
    from tests.support.api import Api  # api.py imports this module

REPO = Path(__file__).resolve().parents[2]
OWNER = "olivia"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_postgres(data_dir: Path) -> str:
    return start_embedded_postgres(data_dir)


def create_database(server_url: str, name: str | None = None) -> str:
    """A fresh, empty database on the test server; returns its URL."""
    name = name or f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("/postgres?", f"/{name}?")


@dataclass
class JupyterServer:
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.url + "agiflow/api/v1"

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_jupyter(
    db_url: str | None, workdir: Path, *, extra_args: list[str] | None = None, extra_env: dict[str, str] | None = None,
    named_users: bool = True, app: str = "server",
) -> JupyterServer:  # fmt: skip
    """Start ``jupyter server`` (or ``lab``) as a real process and wait until AGIFlow answers."""
    port = free_port()
    token = uuid.uuid4().hex
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        AGIFLOW_OWNER=OWNER,
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        JUPYTER_PLATFORM_DIRS="1",
        AGIFLOW_DATA_DIR=str(workdir / "data"),
        # No spare worker beside each supervised one (a process and its kernels, per server, on the two
        # cores the suite shares), except where a test is about it (test_operations.py turns it on).
        AGIFLOW_WORKER_STANDBY="0",
    )
    env.update(extra_env or {})
    args = [
        sys.executable, "-m", f"jupyter{'lab' if app == 'lab' else '_server'}", "--no-browser", "--allow-root",
        f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_unauthenticated_access=False",
    ]  # fmt: skip
    if db_url is not None:
        args.append(f"--AgiflowLab.database_url={db_url}")
    if named_users:
        args.append("--ServerApp.identity_provider_class=tests.support.identity.NamedTokenIdentityProvider")
    args += extra_args or []
    log_path = workdir / f"jupyter-{port}.log"
    process = subprocess.Popen(args, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=root)
    server = JupyterServer(f"http://127.0.0.1:{port}/", token, process, log_path, env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter exited with {process.returncode}:\n{server.log_tail()}")
        try:
            r = httpx.get(server.api + "/projects", headers={"Authorization": f"token {token}"}, timeout=5)
            if r.status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"jupyter did not become ready:\n{server.log_tail()}")


@contextlib.asynccontextmanager
async def configured_api(db_url: str, workdir: Path, extra_args: list[str]) -> AsyncIterator[Api]:
    """A server of its own started with ``extra_args`` (traitlets), and a client for it; stopped after."""
    from tests.support.api import Api

    server = start_jupyter(db_url, workdir, extra_args=extra_args)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            yield Api(server, client)
    finally:
        server.stop()
