"""User code (a ``python`` evaluator, a user's notebook) runs without platform credentials.

Each test runs the same probe inside a job's kernel in project B: it tries the database URL, the
secret-key file, the data dir, other processes' environments, the REST API and the job API for
project A's data. Everything must fail, while the evaluator still scores its own items normally.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.evals import make_connection, make_dataset, make_prompt, qa_items, results, start_run, wait_run
from tests.support.jobs import notebook_of, put_notebook, submit, wait_for
from tests.support.scripted_llm import ScriptedLLM

PROBE = """
import json, os, urllib.error, urllib.request

def _try(fn):
    try:
        fn()
        return "ok"
    except Exception as exc:
        return type(exc).__name__

def _status(url, data=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except Exception as exc:
        return type(exc).__name__

def _foreign_call(token=None):
    # A's connection through the job API's calls socket, with this job's token or another (on a thread:
    # the kernel's own loop is busy running this code).
    import asyncio, re, threading
    from agiflow_lab.evals.job_client import JobApiClient, JobApiError
    from agiflow_lab.providers.base import CompletionRequest
    outcome = []
    async def call():
        client = JobApiClient.from_env() if token is None else JobApiClient(os.environ["AGIFLOW_JOB_API"], token)
        try:
            await client.completer(A_CONNECTION)(CompletionRequest(messages=[{"role": "user", "content": "hi"}], model="m"))
            return "ok"
        except JobApiError as exc:
            code = re.search(r"(\\d{3})", str(exc))
            return int(code.group(1)) if code else str(exc)
        finally:
            await client.close()
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(call())))
    thread.start()
    thread.join(30)
    return outcome[0] if outcome else "timeout"

def probe():
    import psycopg
    found = {}
    found["env"] = sorted(k for k, v in os.environ.items()
                          if DB_URL in v or KEY_PATH in v or DATA_DIR in v
                          or any(w in k for w in ("DATABASE", "SECRET", "KAFKA", "PASSWORD"))
                          or k in ("JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN"))
    found["database"] = _try(lambda: psycopg.connect(DB_URL, connect_timeout=5).close())
    found["key_file"] = _try(lambda: open(KEY_PATH, "rb").read())
    found["data_dir"] = _try(lambda: os.listdir(DATA_DIR))
    leaks = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    leaks += DB_URL.encode() in f.read()
            except OSError:
                pass
    found["proc_environ"] = leaks
    found["parent"] = open(f"/proc/{os.getppid()}/cmdline").read().replace("\\0", " ")
    found["uid"] = os.getuid()
    token = os.environ.get("AGIFLOW_JOB_TOKEN", "")
    found["token"] = token.startswith("agj_")
    found["rest_a_job_token"] = _status(f"{API}/projects/{A}/models", token=token)
    found["rest_a_anonymous"] = _status(f"{API}/projects/{A}/models")
    job_api = os.environ.get("AGIFLOW_JOB_API", "")
    found["job_api_foreign_connection"] = _foreign_call()
    found["job_api_calls_forged_token"] = _foreign_call("agj_" + "x" * 43)
    found["job_api_no_token"] = _status(f"{job_api}/v1/run")
    found["job_api_run"] = _status(f"{job_api}/v1/run", token=token)
    return found
"""

DENIED = {
    "env": [],
    "database": "OperationalError",
    "key_file": "PermissionError",
    "data_dir": "PermissionError",
    "proc_environ": 0,
    "token": True,
    "job_api_no_token": 401,
    "job_api_calls_forged_token": 401,
}


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
async def victim(api: Api, llm: ScriptedLLM) -> dict[str, str]:
    """Project A: a model connection with a key, a prompt, a dataset and a finished run."""
    slug = f"a-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/projects", {"slug": slug, "name": slug})).status_code == 201
    await make_connection(api, slug, "secretconn", llm.openai_base_url, api_key="sk-project-a-secret")
    await make_prompt(api, slug, "qa", "Q: {{question}}")
    await make_dataset(api, slug, "qa", qa_items(3))
    run = await start_run(api, slug, {"prompt": {"name": "qa"}, "dataset": {"name": "qa"},
                                      "model": {"connection": "echo"}, "evaluators": [{"type": "exact_match"}]})  # fmt: skip
    assert (await wait_run(api, slug, run["id"]))["state"] == "succeeded"
    return {"project": slug, "run": run["id"], "job": run["job_id"]}


def probe_source(api: Api, db_url: str, victim: dict[str, str]) -> str:
    data_dir = Path(api.server.env["AGIFLOW_DATA_DIR"])
    assert (data_dir / "secret.key").is_file()  # made when A's connection key was encrypted
    constants = {"DB_URL": db_url, "KEY_PATH": str(data_dir / "secret.key"), "DATA_DIR": str(data_dir),
                 "API": api.server.api, "A": victim["project"], "A_CONNECTION": "secretconn"}  # fmt: skip
    return "".join(f"{k} = {v!r}\n" for k, v in constants.items()) + PROBE


def assert_denied(found: dict[str, Any]) -> None:
    assert {k: found[k] for k in DENIED} == DENIED, found
    assert found["rest_a_job_token"] in (401, 403), found
    assert found["rest_a_anonymous"] in (401, 403), found


async def test_a_python_evaluator_cannot_reach_another_projects_data_but_scores_its_own_items(
    api: Api, project: str, db_url: str, victim: dict[str, str]
) -> None:
    code = probe_source(api, db_url, victim) + (
        "\ndef evaluate(output, expected, input, metadata):\n"
        "    return {'score': 1.0 if output == expected else 0.0, 'explanation': json.dumps(probe())}\n"
    )
    await make_prompt(api, project, "qa", "Q: {{question}}")
    await make_dataset(api, project, "qa", qa_items(2, wrong={1}))
    body = {"prompt": {"name": "qa"}, "dataset": {"name": "qa"}, "model": {"connection": "echo"},
            "evaluators": [{"type": "python", "name": "probe", "code": code, "threshold": 0.5}]}  # fmt: skip
    done = await wait_run(api, project, (await start_run(api, project, body))["id"])
    assert done["state"] == "succeeded", done
    got = {r["item_id"]: r for r in await results(api, project, done["id"])}
    assert got["q0"]["scores"]["probe"]["score"] == 1.0 and got["q0"]["passed"] is True
    assert got["q1"]["scores"]["probe"]["score"] == 0.0 and got["q1"]["passed"] is False
    found = json.loads(got["q0"]["scores"]["probe"]["explanation"])
    assert_denied(found)
    assert found["job_api_foreign_connection"] == 403  # B's run did not pin A's connection
    assert found["job_api_run"] == 200  # its own run, through its own token


async def test_a_users_notebook_cannot_reach_another_projects_data(
    api: Api, project: str, db_url: str, victim: dict[str, str]
) -> None:
    source = probe_source(api, db_url, victim) + "\nfrom agiflow_lab.notebook import emit_result\nemit_result(probe())"
    name = await put_notebook(api, notebook_of(source), "probe")
    done = await wait_for(api, project, (await submit(api, project, {"notebook": f"contents:{name}"}))["id"])
    assert done["state"] == "succeeded", done
    found = done["result"]
    assert_denied(found)
    assert found["job_api_run"] == 404  # not an evaluation job: its token opens nothing
    assert "agiflow_lab_workers.kernel_zygote" in found["parent"]  # the default: a kernel forked, and as safe
    assert found["uid"] != 0 or os.geteuid() != 0  # sandboxed whenever the worker is root
    assert found["job_api_foreign_connection"] == 404


async def test_an_internal_task_cannot_be_submitted_against_another_projects_run(
    api: Api, project: str, victim: dict[str, str]
) -> None:
    before = (await api.get(f"/projects/{victim['project']}/evals/runs/{victim['run']}/results")).json()
    r = await api.post(f"/projects/{project}/jobs",
                       {"notebook": "builtin:evaluate", "parameters": {"run_id": victim["run"]}})  # fmt: skip
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["field"] == "notebook"
    assert "evaluate" not in r.json()["error"]["details"]["available"]
    listed = (await api.get(f"/projects/{project}/jobs")).json()["items"]
    assert listed == []
    after = (await api.get(f"/projects/{victim['project']}/evals/runs/{victim['run']}/results")).json()
    assert after == before


async def test_an_api_key_cannot_run_a_notebook_from_the_servers_files(api: Api, project: str) -> None:
    """The server's files are not a project's: a key (held by a script, perhaps of another team) must not
    run, and so read, whatever notebook lies there."""
    name = await put_notebook(api, notebook_of(), "private")
    for role in ("owner", "editor"):
        key = await api.new_key(project, role)
        r = await api.post(f"/projects/{project}/jobs", {"notebook": f"contents:{name}"}, key=key)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["details"]["field"] == "notebook"
    assert (await api.get(f"/projects/{project}/jobs")).json()["items"] == []
