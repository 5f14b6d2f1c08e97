"""The README's product command on its defaults: `jupyter lab` with no database and no bus configured.

It starts an embedded Postgres in its data dir, uses the Postgres bus and supervises a worker; the
server's token is the owner, who owns the default project. A prompt and a job work end to end.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.servers import start_jupyter


def test_jupyter_lab_on_embedded_defaults_runs_prompts_and_jobs(tmp_path: Path) -> None:
    server = start_jupyter(None, tmp_path, app="lab", named_users=False)
    try:
        h = {"Authorization": f"token {server.token}"}
        projects = httpx.get(server.api + "/projects", headers=h).json()["items"]
        assert [(p["slug"], p["role"]) for p in projects] == [("default", "owner")]
        r = httpx.post(server.api + "/projects/default/prompts", headers=h,
                       json={"name": "hello", "template": "Hi {{who}}", "labels": ["production"]})  # fmt: skip
        assert r.status_code == 201, r.text
        r = httpx.post(server.api + "/projects/default/jobs", headers=h, json={"notebook": "builtin:hello"})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while (job := httpx.get(server.api + f"/projects/default/jobs/{job_id}", headers=h).json())["state"] not in (
            "succeeded", "failed", "cancelled"):  # fmt: skip
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["state"] == "succeeded", (job, server.log_tail())
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").is_file()  # the embedded server's own data dir
        assert httpx.get(server.url + "lab", headers=h).status_code == 200
    finally:
        server.stop()
