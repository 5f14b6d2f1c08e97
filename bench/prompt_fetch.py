"""Fetching a prompt by label: requests/s and latency over HTTP, and gets/s through the SDK's cache.

    python bench/prompt_fetch.py [--seconds 10] [--connections 32,16] [--client raw|httpx|both]

Starts its own embedded Postgres and ``jupyter server`` (with AGIFlow) in subprocesses, creates a
prompt and a project API key, then:

(a) HTTP: ``--connections`` concurrent keep-alive connections (each count in the list is one run) fetch ``GET .../prompts/greet?label=production``
    with the API key for ``--seconds``. The load generator runs in this process, so it shares the
    machine's cores with the server and Postgres; the CPU each one used is printed so the figure can
    be read for what it is. Clients are closed-loop, so mean latency = connections / throughput
    (Little's law): at 32 connections, 2,000 req/s already means 16 ms on average. ``raw`` is a minimal asyncio HTTP/1.1 client (cheap, so most CPU goes to
    the server); ``httpx`` uses ``httpx.AsyncClient`` (what an async app would use; much heavier).
(b) SDK: ``client.prompts.get("greet", label="production")`` in a loop with the cache warm.

Targets (2-core machine): HTTP >= 2,000 req/s with p99 < 20 ms; SDK cache >= 50,000 gets/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import percentile, wait_quiet  # noqa: E402

from agiflow_lab.sdk import Client  # noqa: E402
from tests.support.servers import JupyterServer, create_database, start_jupyter, start_postgres  # noqa: E402

HTTP_TARGET_RPS, HTTP_TARGET_P99_MS, SDK_TARGET = 2_000, 20.0, 50_000
PROJECT = "default"


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


# --- load generators -----------------------------------------------------------------------------


async def _raw_worker(host: str, port: int, request: bytes, deadline: float, result: Result) -> None:
    """One keep-alive connection; parses just enough HTTP/1.1 (status line, Content-Length) to loop."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (start := time.perf_counter()) < deadline:
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            result.requests += 1
            if not status.startswith(b"HTTP/1.1 200"):
                result.errors += 1
    finally:
        writer.close()


async def _httpx_worker(client: httpx.AsyncClient, url: str, deadline: float, result: Result) -> None:
    while (start := time.perf_counter()) < deadline:
        r = await client.get(url)
        result.latencies_ms.append((time.perf_counter() - start) * 1000)
        result.requests += 1
        if r.status_code != 200:
            result.errors += 1


async def http_load(url: str, key: str, seconds: float, connections: int, kind: str) -> Result:
    result = Result(0, 0, seconds, [])
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + "?" + parts.query
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    deadline = time.perf_counter() + seconds
    if kind == "raw":
        await asyncio.gather(*[_raw_worker(host, port, request, deadline, result) for _ in range(connections)])
    else:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:
            await asyncio.gather(*[_httpx_worker(client, url, deadline, result) for _ in range(connections)])
    return result


def sdk_load(client: Client, seconds: float) -> tuple[int, float]:
    client.prompts.get("greet", label="production")  # warm the cache
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    get = client.prompts.get
    while time.perf_counter() < deadline:
        for _ in range(1000):
            get("greet", label="production")
        count += 1000
    return count, time.perf_counter() - start


# --- set-up and report ---------------------------------------------------------------------------


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """This bench's postmaster (its command line names our data dir) and its backends, taken once warm."""
    for p in psutil.process_iter(["cmdline"]):
        if any(str(data_dir) in part for part in p.info["cmdline"] or []) and p.pid != os.getpid():
            return [p, *p.children(recursive=True)]
    return []


def prepare(workdir: Path) -> tuple[JupyterServer, str]:
    pg = start_postgres(workdir / "pg")
    db_url = create_database(pg, "bench")
    server = start_jupyter(db_url, workdir / "jupyter", named_users=False)
    owner = {"Authorization": f"token {server.token}"}
    r = httpx.post(
        f"{server.api}/projects/{PROJECT}/prompts",
        json={"name": "greet", "template": "Hello {{name}} from {{place}}!", "config": {"model": "gpt-4o"},
              "labels": ["production"]},
        headers=owner,
    )  # fmt: skip
    r.raise_for_status()
    r = httpx.post(f"{server.api}/projects/{PROJECT}/keys", json={"name": "bench", "role": "viewer"}, headers=owner)
    r.raise_for_status()
    return server, r.json()["secret"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", default="32,16", help="comma-separated connection counts")
    parser.add_argument("--client", choices=("raw", "httpx", "both"), default="both")
    parser.add_argument("--sdk-seconds", type=float, default=3.0)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="agiflow-bench-") as tmp:
        server, key = prepare(Path(tmp))
        try:
            url = f"{server.api}/projects/{PROJECT}/prompts/greet?label=production"
            server_proc = psutil.Process(server.process.pid)
            settled = wait_quiet(server_proc)  # the supervised worker is still filling its kernel pool
            me = psutil.Process()
            kinds = ["raw", "httpx"] if args.client == "both" else [args.client]
            runs = [(kind, int(n)) for kind in kinds for n in args.connections.split(",")]
            rows = []
            for kind, connections in runs:
                asyncio.run(http_load(url, key, 1.0, connections, kind))  # warm-up (the pool grows here)
                pg_procs = postgres_processes(Path(tmp))
                before = (cpu_seconds([server_proc]), cpu_seconds(pg_procs), cpu_seconds([me]), time.perf_counter())
                result = asyncio.run(http_load(url, key, args.seconds, connections, kind))
                wall = time.perf_counter() - before[3]
                cpu = [
                    (cpu_seconds([server_proc]) - before[0]) / wall,
                    (cpu_seconds(pg_procs) - before[1]) / wall,
                    (cpu_seconds([me]) - before[2]) / wall,
                ]
                rows.append((f"HTTP, {kind} client, {connections} conns", result, cpu))

            with Client(url=server.url, api_key=key, project=PROJECT, cache_ttl=3600) as client:
                gets, sdk_secs = sdk_load(client, args.sdk_seconds)
        finally:
            server.stop()

    cores = os.cpu_count()
    print(f"\nprompt fetch by label — {cores} cores; load generator, Jupyter server and Postgres share them")
    print(f"(1-minute load average before the run: {load_before:.2f}; anything else running skews the figures)")
    print(f"(waited {settled:.1f} s after start-up for the server and its worker to go quiet)")
    print(
        f"{'path':<32}{'rate':>14}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        "   cores used: server / pg / loadgen   server CPU per request"
    )
    for label, result, cpu in rows:
        print(
            f"{label:<32}{result.rate:>10,.0f} r/s"
            f"{result.percentile(50):>9.2f}{result.percentile(99):>9.2f}{result.errors:>8}"
            f"   {cpu[0]:>12.2f} / {cpu[1]:.2f} / {cpu[2]:.2f}   {cpu[0] / result.rate * 1e6:>10.0f} µs"
        )
    print(f"{'SDK get, cache warm':<32}{gets / sdk_secs:>10,.0f} g/s")
    print(
        f"\ntargets: HTTP >= {HTTP_TARGET_RPS:,} req/s with p99 < {HTTP_TARGET_P99_MS:.0f} ms; SDK >= {SDK_TARGET:,} gets/s"
    )
    ok = True
    for label, result, _ in rows:
        met = result.rate >= HTTP_TARGET_RPS and result.percentile(99) < HTTP_TARGET_P99_MS and not result.errors
        ok &= met
        print(f"  {label}: {'met' if met else 'MISSED'}  (mean {statistics.fmean(result.latencies_ms):.2f} ms)")
    sdk_met = gets / sdk_secs >= SDK_TARGET
    print(f"  SDK: {'met' if sdk_met else 'MISSED'}")
    return 0 if ok and sdk_met else 1


if __name__ == "__main__":
    sys.exit(main())
