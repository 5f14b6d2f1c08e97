"""The README's product command on its defaults: `jupyter lab` with no database and no bus configured.

It starts an embedded Postgres in its data dir, uses the Postgres bus and supervises a worker; the
server's token is the owner, who owns the default project. A prompt, a job and evaluation runs (the
built-in echo, and a connection whose encrypted key the supervised worker's kernel must decrypt) work
end to end.
"""

from __future__ import annotations

import stat
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.scripted_llm import ScriptedLLM
from tests.support.servers import start_jupyter


def wait_final(url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while (found := httpx.get(url, headers=headers).json())["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    return dict(found)


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

        items = [{"input": {"who": "Ada"}, "expected": "Hi Ada"}, {"input": {"who": "Bob"}, "expected": "Hi Bo"}]
        r = httpx.post(server.api + "/projects/default/datasets", headers=h, json={"name": "hello", "items": items})
        assert r.status_code == 201, r.text
        with ScriptedLLM() as llm:
            llm.script()
            r = httpx.post(server.api + "/projects/default/models", headers=h,
                           json={"name": "local", "kind": "openai", "base_url": llm.openai_base_url,
                                 "api_key": "sk-quickstart", "default_model": "gpt-4o-mini"})  # fmt: skip
            assert r.status_code == 201, r.text
            for connection in ("echo", "local"):
                body = {"prompt": {"name": "hello"}, "dataset": {"name": "hello"}, "model": {"connection": connection},
                        "evaluators": [{"type": "exact_match"}]}  # fmt: skip
                r = httpx.post(server.api + "/projects/default/evals/runs", headers=h, json=body)
                assert r.status_code == 201, r.text
                run = wait_final(server.api + f"/projects/default/evals/runs/{r.json()['id']}", h)
                assert run["state"] == "succeeded", (run, server.log_tail())
                assert run["aggregates"]["passed"] == 1 and run["aggregates"]["errors"] == 0, run
            assert len(llm.requests()) == 2
        key_file = tmp_path / "data" / "secret.key"  # encrypts provider keys; only the server's user reads it
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    finally:
        server.stop()
