"""``agiflow-lab db upgrade``: apply pending migrations to the configured or embedded database."""

from __future__ import annotations

import asyncio
import os

from agiflow_lab.config import Settings
from agiflow_lab.db import migrate
from agiflow_lab.db.database import Database
from agiflow_lab.db.embedded import start_embedded_postgres
from agiflow_lab.traces.retention import TracesPurged, purge_traces
from agiflow_lab.traces.store import PostgresSpanStore

DATABASE_ENV = "AGIFLOW_DATABASE_URL"


def database_url(flag: str | None) -> tuple[str, str]:
    """(URL, where it came from): the flag, then ``AGIFLOW_DATABASE_URL``, then the embedded server."""
    if flag:
        return flag, "--database-url"
    if url := os.environ.get(DATABASE_ENV):
        return url, DATABASE_ENV
    data_dir = Settings().with_env().data_dir
    return start_embedded_postgres(data_dir), f"embedded Postgres under {data_dir}"


def upgrade(url: str) -> list[int]:
    return asyncio.run(migrate.upgrade(url))


def purge_traces_now(url: str, default_days: int) -> TracesPurged:
    async def purge() -> TracesPurged:
        database = Database(url, min_size=1, max_size=2)
        await database.open()
        try:
            return await purge_traces(database, PostgresSpanStore(database), default_days=default_days)
        finally:
            await database.close()

    return asyncio.run(purge())
