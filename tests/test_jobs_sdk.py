"""``client.jobs`` against a real server and worker: submit a notebook, wait, read its result and log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agiflow_lab.errors import ValidationFailed
from agiflow_lab.sdk import Client
from tests.support.api import Api
from tests.support.servers import JupyterServer


@pytest.fixture
async def editor_key(api: Api, project: str) -> str:
    return await api.new_key(project, "editor")


@pytest.fixture
def client(jupyter: JupyterServer, editor_key: str, project: str) -> Iterator[Client]:
    with Client(url=jupyter.url, api_key=editor_key, project=project) as c:
        yield c


def test_a_submitted_notebook_runs_and_its_result_and_log_come_back(client: Client) -> None:
    job = client.jobs.submit("builtin:hello", {"name": "SDK"}, wait=True, timeout=120)
    assert job.state == "succeeded"
    assert "Hello, SDK!" in job.log()
    assert [e.data["state"] for e in job.events() if e.type == "state"] == ["queued", "running", "succeeded"]
    assert job.notebook()["cells"], "the executed notebook is there"
    html = job._repr_html_()
    assert "builtin:hello" in html and "succeeded" in html and "&quot;SDK&quot;" in html
    assert [j.id for j in client.jobs.list(notebook="builtin:hello", limit=5)][0] == job.id
    assert client.jobs.get(job.id).state == "succeeded"


def test_a_failing_notebook_says_where_and_why(client: Client) -> None:
    job = client.jobs.submit("builtin:fail", max_attempts=1, wait=True, timeout=120)
    assert job.state == "failed"
    assert job.job.error is not None and job.job.error.ename
    assert job.job.error.ename in job._repr_html_()


def test_a_bad_submission_is_refused_naming_the_field(client: Client) -> None:
    with pytest.raises(ValidationFailed) as refused:
        client.jobs.submit("builtin:hello", timeout_seconds=-1)
    assert "timeout_seconds" in str(refused.value)
