"""Session fixtures start real things once: an embedded Postgres and a Jupyter server with AGIFlow.

Tests isolate themselves by project (each gets a fresh one), not by mocking.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from agiflow_lab.db import migrate
from agiflow_lab.db.database import Database
from tests.support.api import Api
from tests.support.servers import JupyterServer, create_database, start_jupyter, start_postgres

pytest_plugins = ["tests.support.kafka"]


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of the embedded Postgres server's maintenance database."""
    return start_postgres(tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="session")
def db_url(pg_server: str) -> str:
    return create_database(pg_server, "agiflow_tests")


@pytest.fixture
async def db(pg_server: str) -> AsyncIterator[Database]:
    """A fresh, migrated database of this test's own (for tests of the core without a server)."""
    url = await asyncio.to_thread(create_database, pg_server)
    await migrate.upgrade(url)
    database = Database(url, min_size=1, max_size=10)
    await database.open()
    yield database
    await database.close()


@pytest.fixture(scope="session")
def jupyter(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = start_jupyter(db_url, tmp_path_factory.mktemp("jupyter"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def api(jupyter: JupyterServer) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield Api(jupyter, client)


@pytest.fixture
async def project(api: Api) -> str:
    """A fresh project owned by the server's owner."""
    slug = f"p-{uuid.uuid4().hex[:10]}"
    r = await api.post("/projects", {"slug": slug, "name": slug})
    assert r.status_code == 201, r.text
    return slug


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
