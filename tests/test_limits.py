"""Admission control: a per-project and a global limit on running jobs, enforced by the dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from tests.support.api import Api
from tests.support.jobs import submit, wait_for
from tests.support.servers import configured_api, create_database


@pytest.fixture(scope="module")
async def limited(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    args = ["--AgiflowLab.workers=1", "--AgiflowLab.worker_concurrency=4",
            "--AgiflowLab.max_running_jobs_per_project=1", "--AgiflowLab.max_running_jobs=2"]  # fmt: skip
    async with configured_api(create_database(pg_server), tmp_path_factory.mktemp("limits"), args) as api:
        yield api


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


async def test_running_jobs_respect_the_project_and_global_limits(limited: Api) -> None:
    api = limited
    for slug in ("alpha", "beta", "gamma"):
        assert (await api.post("/projects", {"slug": slug, "name": slug})).status_code == 201
    body = {"notebook": "builtin:sleep", "parameters": {"seconds": 1}}
    jobs = {slug: [await submit(api, slug, body) for _ in range(3)] for slug in ("alpha", "beta", "gamma")}
    done = {slug: [await wait_for(api, slug, j["id"], timeout=120) for j in js] for slug, js in jobs.items()}

    def interval(job: dict) -> tuple[datetime, datetime]:
        return datetime.fromisoformat(job["started_at"]), datetime.fromisoformat(job["finished_at"])

    for slug, finished in done.items():
        assert all(j["state"] == "succeeded" for j in finished), finished
        assert most_at_once([interval(j) for j in finished]) == 1, slug  # per-project limit: 1
    everything = [interval(j) for finished in done.values() for j in finished]
    assert most_at_once(everything) == 2  # global limit 2 (the worker could run 4), and it was used
    status = (await api.get("/status")).json()
    assert status["queued"] == status["dispatched"] == status["running"] == 0
