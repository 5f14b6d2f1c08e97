"""The job pipeline end to end: API → bus → worker (papermill) → bus → API → WebSocket.

Runs against the session's real Jupyter server, which supervises one real worker process on the
default Postgres bus. The same pipeline on Kafka, and the fault tests, are in test_pipeline_faults.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.support.api import Api
from tests.support.jobs import events, notebook_of, put_notebook, states_of, submit, wait_for


async def test_a_builtin_notebook_runs_with_parameters_and_reports_back(api: Api, project: str) -> None:
    job = await submit(api, project, {"notebook": "builtin:hello", "parameters": {"name": "Ada", "repeat": 2}})
    assert job["state"] == "queued" and job["submitted_by"] == "olivia"
    done = await wait_for(api, project, job["id"])
    assert done["state"] == "succeeded", done
    assert done["result"] == {"greeting": "Hello, Ada!", "repeat": 2}
    assert done["attempts"] == 1 and done["worker_id"]
    assert done["cells_done"] == done["cells_total"] > 0
    assert done["started_at"] >= done["created_at"] and done["finished_at"] >= done["started_at"]

    evts = await events(api, project, job["id"])
    assert states_of(evts) == ["queued", "running", "succeeded"]
    logs = "".join(e["data"]["text"] for e in evts if e["type"] == "log")
    assert logs == "Hello, Ada!\nHello, Ada!\n"
    progress = [e["data"]["done"] for e in evts if e["type"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == done["cells_total"]
    assert [e["id"] for e in evts] == sorted(e["id"] for e in evts)

    r = await api.get(f"/projects/{project}/jobs/{job['id']}/notebook")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    notebook = r.json()
    injected = [c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert "Ada" in "".join(injected[0]["source"])


async def test_the_executed_notebook_opens_as_a_jupyter_file(api: Api, project: str) -> None:
    job = await submit(api, project, {"notebook": "builtin:hello"})
    await wait_for(api, project, job["id"])
    r = await api.post(f"/projects/{project}/jobs/{job['id']}/notebook/open")
    assert r.status_code == 200, r.text
    path = r.json()["path"]
    assert path == f"agiflow-jobs/{project}/hello-{job['id'][:8]}.ipynb"  # says what ran, and which job
    r = await api.client.get(api.server.url + f"api/contents/{path}", headers=api.headers())
    assert r.status_code == 200 and r.json()["type"] == "notebook"


async def test_a_failing_notebook_fails_with_cell_and_traceback(api: Api, project: str) -> None:
    job = await submit(api, project, {"notebook": "builtin:fail", "parameters": {"message": "no good"}})
    done = await wait_for(api, project, job["id"])
    assert done["state"] == "failed"
    error = done["error"]
    assert error["ename"] == "ValueError" and error["evalue"] == "no good"
    assert error["cell_index"] is not None and any("ValueError" in line for line in error["traceback"])
    assert done["attempts"] == 1  # a notebook's own exception is not retried
    notebook = (await api.get(f"/projects/{project}/jobs/{job['id']}/notebook")).json()
    text = json.dumps(notebook)
    assert "ValueError" in text and "no good" in text


async def test_cancel_stops_a_running_kernel_within_seconds(api: Api, project: str) -> None:
    job = await submit(api, project, {"notebook": "builtin:sleep", "parameters": {"seconds": 60}})
    await wait_for(api, project, job["id"], {"running"})
    r = await api.post(f"/projects/{project}/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    done = await wait_for(api, project, job["id"], timeout=15)
    assert done["state"] == "cancelled"
    assert (await api.post(f"/projects/{project}/jobs/{job['id']}/cancel")).status_code == 409


async def test_the_whole_job_timeout_is_enforced(api: Api, project: str) -> None:
    job = await submit(api, project, {"notebook": "builtin:sleep", "parameters": {"seconds": 60},
                                      "timeout_seconds": 3})  # fmt: skip
    done = await wait_for(api, project, job["id"], timeout=30)
    assert done["state"] == "failed" and done["error"]["ename"] == "JobTimeout"


async def test_retry_runs_a_failed_job_again(api: Api, project: str) -> None:
    job = await submit(api, project, {"notebook": "builtin:fail"})
    await wait_for(api, project, job["id"])
    r = await api.post(f"/projects/{project}/jobs/{job['id']}/retry")
    assert r.status_code == 200 and r.json()["state"] == "queued"
    done = await wait_for(api, project, job["id"])
    assert done["state"] == "failed" and done["attempts"] == 2
    succeeded = await submit(api, project, {"notebook": "builtin:hello"})
    await wait_for(api, project, succeeded["id"])
    assert (await api.post(f"/projects/{project}/jobs/{succeeded['id']}/retry")).status_code == 409


async def test_an_idempotency_key_makes_resubmission_safe(api: Api, project: str) -> None:
    body = {"notebook": "builtin:hello", "parameters": {"name": "once"}, "idempotency_key": "nightly-2026-11-27"}
    first = await api.post(f"/projects/{project}/jobs", body)
    again = await api.post(f"/projects/{project}/jobs", body)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    clash = await api.post(f"/projects/{project}/jobs", {**body, "parameters": {"name": "other"}})
    assert clash.status_code == 409 and clash.json()["error"]["details"]["field"] == "idempotency_key"
    listed = (await api.get(f"/projects/{project}/jobs")).json()["items"]
    assert len(listed) == 1


async def test_a_notebook_from_the_users_files_runs(api: Api, project: str) -> None:
    notebook = notebook_of("# parameters\nx = 1",
                           "from agiflow_lab.notebook import emit_result\nemit_result({'double': x * 2})")  # fmt: skip
    name = await put_notebook(api, notebook, "mine")
    job = await submit(api, project, {"notebook": f"contents:{name}", "parameters": {"x": 21}})
    done = await wait_for(api, project, job["id"])
    assert done["state"] == "succeeded" and done["result"] == {"double": 42}


async def test_bad_submissions_are_client_errors(api: Api, project: str) -> None:
    url = f"/projects/{project}/jobs"
    cases = [
        ({"notebook": "builtin:nope"}, 400, "notebook"),
        ({"notebook": "contents:missing.ipynb"}, 400, "notebook"),
        ({"notebook": "/etc/passwd"}, 422, "notebook"),
        ({"notebook": "builtin:hello", "timeout_seconds": -1}, 422, "timeout_seconds"),
        ({"notebook": "builtin:hello", "parameters": []}, 422, "parameters"),
    ]
    for body, status, field in cases:
        r = await api.post(url, body)
        assert r.status_code == status, (body, r.text)
        details = r.json()["error"]["details"]
        assert field in json.dumps(details), (body, details)
    # The name for batch inference answers where it lives (an evaluation run with output_dataset).
    r = await api.post(url, {"notebook": "builtin:batch_inference"})
    assert r.status_code == 400 and "output_dataset" in r.json()["error"]["message"], r.text
    assert (await api.get(url)).json()["items"] == []
    assert (await api.get(f"{url}/not-a-uuid")).status_code == 404
    assert (await api.get(url, params={"state": "sleeping"})).status_code == 422


async def test_list_filters_and_pages(api: Api, project: str) -> None:
    ids = [(await submit(api, project, {"notebook": "builtin:hello", "parameters": {"name": str(i)}}))["id"]
           for i in range(5)]  # fmt: skip
    for job_id in ids:
        await wait_for(api, project, job_id)
    seen, cursor = [], None
    while True:
        page = (
            await api.get(f"/projects/{project}/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        ).json()
        seen += [j["id"] for j in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == list(reversed(ids))
    assert len((await api.get(f"/projects/{project}/jobs", params={"state": "succeeded"})).json()["items"]) == 5
    assert (await api.get(f"/projects/{project}/jobs", params={"state": "failed"})).json()["items"] == []


async def test_status_shows_live_workers_and_queue(api: Api) -> None:
    status = (await api.get("/status")).json()
    assert any(w["alive"] for w in status["workers"])
    assert {"queued", "dispatched", "running", "oldest_queued_seconds"} <= set(status)


def ws_url(api: Api, project: str, after: int | str = 0) -> str:
    return api.server.url.replace("http://", "ws://") + f"agiflow/api/v1/events?project={project}&after={after}"


async def connect(api: Api, project: str, after: int | str = 0, **who: Any) -> WebSocketClientConnection:
    request = HTTPRequest(ws_url(api, project, after), headers=api.headers(**who))
    return await websocket_connect(request)


async def receive(ws: WebSocketClientConnection) -> dict[str, Any]:
    message = await ws.read_message()
    assert message is not None, "the server closed the socket"
    return dict(json.loads(message))


async def test_websocket_pushes_events_live_and_resumes_from_an_id(api: Api, project: str) -> None:
    ws = await connect(api, project)
    job = await submit(api, project, {"notebook": "builtin:hello", "parameters": {"name": "live"}})
    received = []
    async with asyncio.timeout(60):
        while True:
            event = await receive(ws)
            received.append(event)
            if event["type"] == "state" and event["data"]["state"] == "succeeded":
                break
    ws.close()
    assert all(e["job_id"] == job["id"] and e["project"] == project for e in received)
    assert states_of(received) == ["queued", "running", "succeeded"]
    assert any(e["type"] == "log" and "Hello, live!" in e["data"]["text"] for e in received)
    ids = [e["id"] for e in received]
    assert ids == sorted(set(ids))

    middle = received[len(received) // 2]["id"]
    expected = [i for i in ids if i > middle]
    ws = await connect(api, project, after=middle)
    async with asyncio.timeout(10):
        replayed = [(await receive(ws))["id"] for _ in expected]
    ws.close()
    assert replayed == expected


async def test_websocket_after_latest_follows_what_happens_next_without_the_history(api: Api, project: str) -> None:
    earlier = await submit(api, project, {"notebook": "builtin:hello", "parameters": {"name": "earlier"}})
    await wait_for(api, project, earlier["id"])
    ws = await connect(api, project, after="latest")
    later = await submit(api, project, {"notebook": "builtin:hello", "parameters": {"name": "later"}})
    async with asyncio.timeout(60):
        first = await receive(ws)
    ws.close()
    assert first["job_id"] == later["id"]  # with after=0 it would be the earlier job's "queued"

    with pytest.raises(HTTPClientError) as bad:
        await connect(api, project, after="soon")
    assert bad.value.code == 400


async def test_websocket_access_is_checked_per_project(api: Api, project: str) -> None:
    with pytest.raises(HTTPClientError) as anonymous:
        await connect(api, project, anonymous=True)
    assert anonymous.value.code == 401
    with pytest.raises(HTTPClientError) as stranger:
        await connect(api, project, user="stranger")
    assert stranger.value.code == 403
    viewer = await api.new_key(project, "viewer")
    ws = await connect(api, project, key=viewer)
    await submit(api, project, {"notebook": "builtin:hello"})
    async with asyncio.timeout(30):
        assert (await receive(ws))["project"] == project
    ws.close()
