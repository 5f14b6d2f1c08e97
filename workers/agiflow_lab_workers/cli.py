"""``agiflow-lab worker``: registered into the CLI through the ``agiflow_lab.cli`` entry point group,
so the core package never imports the worker package.

Every ``agiflow-lab`` command (``prompts push`` as much as ``worker``) builds this sub-parser, so this
module imports nothing heavy: the worker itself (papermill, jupyter_client, the bus; ~0.9 s) is imported
only when ``worker`` runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agiflow_lab_workers.roles import ROLES

if TYPE_CHECKING:
    from agiflow_lab_workers.worker import WorkerOptions

QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "tornado.access")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("worker", help="run a worker that executes notebook jobs and stores spans until SIGTERM")
    p.add_argument("--database-url", help="Postgres URL (default: AGIFLOW_DATABASE_URL, else the embedded one)")
    p.add_argument("--bus", choices=["postgres", "kafka"], help="message bus (default: AGIFLOW_BUS or postgres)")
    p.add_argument("--kafka-bootstrap", help="Kafka bootstrap servers (default: AGIFLOW_KAFKA_BOOTSTRAP)")
    p.add_argument("--concurrency", type=int, default=2, help="jobs run at once (default 2)")
    p.add_argument("--pool-size", type=int, help="pre-started kernels (default: = concurrency; 0 disables)")
    p.add_argument("--topics", help="comma-separated topics to consume (default: jobs)")
    p.add_argument("--roles", default=",".join(ROLES),
                   help="comma-separated roles: jobs (run notebooks), spans (store traces) (default: jobs,spans)")  # fmt: skip
    p.add_argument("--drain-seconds", type=float, default=10.0, help="grace period on SIGTERM (default 10)")
    p.add_argument("--heartbeat-seconds", type=float, default=2.0, help="heartbeat and lease renewal interval")
    p.add_argument("--work-dir", type=Path, help="scratch space for running notebooks")
    p.add_argument("--worker-id", help="stable id (default: host-pid-random)")
    p.add_argument(
        "--member",
        help="a name this worker keeps in its consumer group when restarted (Kafka static membership): a restarted "
        "worker takes over its partitions at once instead of after the session timeout. Unique among live workers.",
    )
    p.add_argument(
        "--standby",
        action="store_true",
        help="a supervisor's spare: start kernels and open the database, then wait for a JSON line on stdin "
        "with the worker_id and member to run as (end of input: exit)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from agiflow_lab.bus.topics import JOBS
    from agiflow_lab.config import Settings
    from agiflow_lab.db.embedded import start_embedded_postgres
    from agiflow_lab_workers.scratch import WORK_DIR, Scratch
    from agiflow_lab_workers.worker import WorkerOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for per_request in QUIET_LOGGERS:  # a line per model call and job-API request: thousands per evaluation run
        logging.getLogger(per_request).setLevel(logging.WARNING)  # (failures still log at WARNING and above)
    roles = tuple(dict.fromkeys(r.strip() for r in args.roles.split(",") if r.strip()))
    if not roles or set(roles) - set(ROLES):
        raise SystemExit(f"--roles must name some of: {', '.join(ROLES)}")
    settings = Settings().with_env()
    url = args.database_url or settings.database_url or start_embedded_postgres(settings.data_dir)
    if args.concurrency < 1:
        raise SystemExit("--concurrency must be at least 1")
    # A work dir made here is this process's alone and is removed when it stops (each job's folder in it
    # goes when the job ends): a supervised worker is started again and again in a server's life.
    own_work_dir = Scratch(WORK_DIR) if args.work_dir is None else None
    options = WorkerOptions(
        database_url=url,
        work_dir=args.work_dir if own_work_dir is None else own_work_dir.path,
        bus=args.bus,
        kafka_bootstrap=args.kafka_bootstrap,
        concurrency=args.concurrency,
        pool_size=args.pool_size,
        topics=tuple(t.strip() for t in (args.topics or JOBS).split(",") if t.strip()),
        drain_seconds=args.drain_seconds,
        heartbeat_seconds=args.heartbeat_seconds,
        roles=roles,
    )
    if args.worker_id:
        options.worker_id = args.worker_id
    options.member = args.member
    try:
        asyncio.run(_main(options, standby=args.standby))
    finally:
        if own_work_dir is not None:
            own_work_dir.remove()
    return 0


async def _main(options: WorkerOptions, *, standby: bool = False) -> None:
    from agiflow_lab_workers.worker import Worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def identity() -> tuple[str, str]:
        """The supervisor's line on stdin: who this spare is to be. End of input (the supervisor is
        stopping, or gone): stop, as on SIGTERM."""
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        line = await reader.readline()
        if not line.strip():
            stop.set()
            await asyncio.Event().wait()  # cancelled by the stop
        who = json.loads(line)
        return str(who["worker_id"]), str(who["member"])

    if standby:
        options.identity = identity
    await Worker(options).run(stop)
