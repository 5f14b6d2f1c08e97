"""The launcher's "Getting started" notebook runs green under papermill against a real server, with no API
key (the kernel signs in with the Jupyter server's token, as one started by JupyterLab does), and a second run
over the same project is as green as the first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agiflow_lab.onboarding import GETTING_STARTED
from tests.support.api import Api
from tests.support.servers import JupyterServer


def run_notebook(jupyter: JupyterServer, project: str, out: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGIFLOW_")}
    env.update(JUPYTER_SERVER_URL=jupyter.url, JUPYTER_TOKEN=jupyter.token)
    done = subprocess.run(
        [sys.executable, "-m", "papermill", str(GETTING_STARTED), str(out), "-p", "project", project,
         "--kernel", "python3", "--cwd", str(out.parent)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(out.read_text()))


async def test_getting_started_runs_green_twice_and_leaves_what_it_describes(
    jupyter: JupyterServer, api: Api, project: str, tmp_path: Path
) -> None:
    first = run_notebook(jupyter, project, tmp_path / "first.ipynb")
    outputs = [o for c in first["cells"] for o in c.get("outputs", [])]  # type: ignore[attr-defined]
    assert not [o for o in outputs if o["output_type"] == "error"]
    shown = json.dumps(outputs)
    assert "Hello, Getting started!" in shown  # the job's log, printed
    assert "evaluation run" in shown and "getting started" in shown  # the run's own view

    base = f"/projects/{project}"
    prompt = (await api.get(f"{base}/prompts/getting-started-greeting")).json()
    assert "production" in json.dumps(prompt)
    runs = (await api.get(f"{base}/evals/runs")).json()["items"]
    assert [(r["name"], r["state"]) for r in runs] == [("getting started", "succeeded")]
    assert runs[0]["aggregates"]["items_done"] == 3 and runs[0]["aggregates"]["pass_rate"] < 1  # one case fails
    jobs = (await api.get(f"{base}/jobs")).json()["items"]
    assert sorted((j["notebook"], j["state"]) for j in jobs) == [  # the evaluation ran as a job too
        ("builtin:evaluate", "succeeded"),
        ("builtin:hello", "succeeded"),
    ]

    run_notebook(jupyter, project, tmp_path / "second.ipynb")  # again: a new version, the items replaced
    versions = (await api.get(f"{base}/prompts/getting-started-greeting/versions")).json()["items"]
    assert len(versions) == 2
    dataset = (await api.get(f"{base}/datasets/getting-started-people")).json()
    assert dataset["item_count"] == 3


async def test_the_launcher_gets_the_notebook_from_the_server(api: Api) -> None:
    r = await api.get("/getting-started")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ipynb+json")
    assert r.json() == json.loads(GETTING_STARTED.read_text())
    assert (await api.get("/getting-started", anonymous=True)).status_code in (401, 403)
