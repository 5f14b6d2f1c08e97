"""Storage start-up: migrations under an advisory lock, the embedded Postgres shared between servers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from agiflow_lab.db import migrate
from tests.support.servers import create_database, start_jupyter


def test_two_servers_racing_on_an_empty_database_both_start_and_migrate_once(pg_server: str, tmp_path: Path) -> None:
    url = create_database(pg_server)
    with ThreadPoolExecutor(2) as pool:
        servers = list(pool.map(lambda i: start_jupyter(url, tmp_path / f"s{i}"), range(2)))
    try:
        for server in servers:
            r = httpx.get(server.api + "/projects", headers={"Authorization": f"token {server.token}"})
            assert [p["slug"] for p in r.json()["items"]] == ["default"]
        with psycopg.connect(url) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM control.schema_migrations ORDER BY 1")]
            defaults = conn.execute("SELECT count(*) FROM control.projects WHERE slug = 'default'").fetchone()
            schemas = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
        assert versions == [m.version for m in migrate.available_migrations()]
        assert defaults == (1,)
        assert {"control", "analytics"} <= schemas
    finally:
        for server in servers:
            server.stop()


async def test_concurrent_upgrades_apply_each_migration_once(pg_server: str) -> None:
    url = create_database(pg_server)
    results = await asyncio.gather(*[migrate.upgrade(url) for _ in range(4)])
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in migrate.available_migrations()]
    assert await migrate.upgrade(url) == []


async def test_an_edited_migration_is_refused(pg_server: str) -> None:
    url = create_database(pg_server)
    await migrate.upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE control.schema_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(migrate.MigrationError, match="changed after it was applied"):
        await migrate.upgrade(url)


def test_second_server_on_the_same_data_dir_reuses_the_embedded_postgres(tmp_path: Path) -> None:
    data = {"AGIFLOW_DATA_DIR": str(tmp_path / "shared-data")}
    first = start_jupyter(None, tmp_path / "a", extra_env=data)
    second = None
    try:
        second = start_jupyter(None, tmp_path / "b", extra_env=data)
        h1 = {"Authorization": f"token {first.token}"}
        h2 = {"Authorization": f"token {second.token}"}
        r = httpx.post(first.api + "/projects/default/prompts", json={"name": "shared", "template": "x"}, headers=h1)
        assert r.status_code == 201, r.text
        r = httpx.get(second.api + "/projects/default/prompts/shared", params={"label": "latest"}, headers=h2)
        assert r.status_code == 200 and r.json()["template"] == "x"
        pids = list((tmp_path / "shared-data" / "postgres").glob("postmaster.pid"))
        assert len(pids) == 1
    finally:
        if second:
            second.stop()
        first.stop()


def test_api_replicas_never_serve_a_stale_prompt_or_role(db_url: str, tmp_path: Path) -> None:
    """Each process caches prompt lookups and Casbin decisions; a write on one replica reaches the other."""
    a = start_jupyter(db_url, tmp_path / "a")
    b = start_jupyter(db_url, tmp_path / "b")
    try:
        ha, hb = {"Authorization": f"token {a.token}"}, {"Authorization": f"token {b.token}"}
        slug = f"rep-{uuid.uuid4().hex[:6]}"
        assert httpx.post(a.api + "/projects", json={"slug": slug, "name": slug}, headers=ha).status_code == 201
        base = f"/projects/{slug}/prompts"
        body = {"name": "p", "template": "one", "labels": ["production"]}
        assert httpx.post(a.api + base, json=body, headers=ha).status_code == 201
        assert httpx.post(a.api + base + "/p/versions", json={"template": "two"}, headers=ha).status_code == 201
        for _ in range(3):  # warm replica b's cache
            assert httpx.get(b.api + base + "/p", headers=hb).json()["version"] == 1
        assert httpx.put(a.api + base + "/p/labels/production", json={"version": 2}, headers=ha).status_code == 200
        assert _eventually(lambda: httpx.get(b.api + base + "/p", headers=hb).json()["version"] == 2)

        bob = {"Authorization": "token user-bob"}
        assert (
            httpx.put(a.api + f"/projects/{slug}/members/bob", json={"role": "viewer"}, headers=ha).status_code == 200
        )
        assert _eventually(lambda: httpx.get(b.api + base, headers=bob).status_code == 200)
        assert httpx.delete(a.api + f"/projects/{slug}/members/bob", headers=ha).status_code == 204
        assert _eventually(lambda: httpx.get(b.api + base, headers=bob).status_code == 403)
    finally:
        a.stop()
        b.stop()


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Replicas learn of writes by NOTIFY: milliseconds, not a request later. Poll briefly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False
