"""The JupyterLab extension in a real browser: Debian's Chromium driven by playwright-core.

The browser scenarios live in ``tests/browser/*.test.mjs``; this test starts a real JupyterLab with
AGIFlow (the test identity provider: the server's token is the owner, ``?token=user-<name>`` signs a
browser in as ``<name>``, so a scenario can be a project's viewer; the app exposed as
``window.jupyterapp`` so scenarios open views with ``app.commands.execute``; Notebook 7 served beside it
for the widgets scenario), seeds a prompt, a finished evaluation run and a project of traces exported by
the OpenTelemetry SDK, and runs them. A missing Chromium, missing node modules or a missing Notebook 7
fail the test: CI must never pass without a browser.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.scripted_llm import ScriptedLLM
from tests.support.servers import JupyterServer, start_jupyter
from tests.support.traces import export

REPO = Path(__file__).resolve().parents[1]
FINAL = {"succeeded", "failed", "cancelled"}
# Answers of the built-in echo connection to "Q: {{question}}" (v1): all right but the last, which
# only the v2 template "A: {{question}}" gets right. So v2 against v1: 3 regressed, 1 improved.
EVAL_ITEMS = [
    {"id": "sum", "input": {"question": "2+2?"}, "expected": "Q: 2+2?"},
    {"id": "capital", "input": {"question": "capital of France?"}, "expected": "Q: capital of France?"},
    {"id": "sky", "input": {"question": "colour of the sky?"}, "expected": "Q: colour of the sky?"},
    {"id": "planet", "input": {"question": "largest planet?"}, "expected": "A: largest planet?"},
]


@pytest.mark.timeout(900)  # every scenario in one node run; the suite grows with the panels
def test_prompt_browser_panel_in_jupyterlab(db_url: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Chromium is not installed (apt-get install chromium); scripts/test installs it")
    if not (REPO / "tests/browser/node_modules/playwright-core").is_dir():
        pytest.fail("tests/browser/node_modules is missing; run `npm ci` in tests/browser (scripts/test does)")
    server = start_jupyter(db_url, tmp_path, app="lab", extra_args=[
        "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
    ])  # fmt: skip
    notebook7 = httpx.get(server.url + "tree", headers=auth(server), follow_redirects=False, timeout=30)
    if notebook7.status_code != 200:  # widgets.test.mjs opens a notebook in Notebook 7 too
        server.stop()
        pytest.fail(f"Notebook 7 is not served beside JupyterLab (GET /tree: {notebook7.status_code}); "
                    "`notebook>=7` is in the test extras and its server extension must be enabled")  # fmt: skip
    llm = ScriptedLLM(log_path=tmp_path / "scripted-llm.log")  # the Models scenario tests a connection against it
    try:
        llm.start()
        name = f"browser-{uuid.uuid4().hex[:6]}"
        r = httpx.post(
            server.api + "/projects/default/prompts",
            json={"name": name, "template": "Summarise {{text}} in {{words}} words.", "labels": ["production"]},
            headers={"Authorization": f"token {server.token}"},
        )
        assert r.status_code == 201, r.text
        env = dict(os.environ, AGIFLOW_LAB_URL=server.url, AGIFLOW_LAB_TOKEN=server.token,
                   AGIFLOW_EXPECT_PROMPT=name, CHROMIUM_PATH=chromium, AGIFLOW_SCRIPTED_LLM_URL=llm.url,
                   **seed_evaluations(server),
                   **seed_traces(server), **seed_big_trace(server))  # fmt: skip
        run = subprocess.run(
            ["node", "--test", "tests/browser/"], cwd=REPO, env=env, capture_output=True, text=True, timeout=840
        )
        report = run.stdout + run.stderr
        (REPO / "tests/browser/artifacts").mkdir(exist_ok=True)
        (REPO / "tests/browser/artifacts/report.txt").write_text(report)  # each scenario's duration_ms, pass or fail
        assert run.returncode == 0, report + "\n--- server log ---\n" + server.log_tail()
        assert "# fail 0" in report and "# skipped 0" in report and f"# pass {scenario_count()}" in report, report
    finally:
        llm.stop()
        server.stop()


def scenario_count() -> int:
    """The browser scenarios written (each a ``test('...'`` call): every one must have run and passed."""
    return sum(
        len(re.findall(r"^\s*test\('", p.read_text(), re.MULTILINE))
        for p in (REPO / "tests/browser").glob("*.test.mjs")
    )


def seed_evaluations(server: JupyterServer) -> dict[str, str]:
    """A prompt with two versions, a dataset and a finished echo run of v1 (the baseline); the browser
    test starts the v2 run itself, once its view is live. Returns the variables evals.test.mjs reads."""
    name = f"evals-{uuid.uuid4().hex[:6]}"
    post(server, "/projects/default/prompts", {"name": name, "template": "Q: {{question}}"})
    post(server, "/projects/default/datasets", {"name": name, "items": EVAL_ITEMS})
    baseline = post(server, "/projects/default/evals/runs", {
        "name": f"{name} v1", "prompt": {"name": name, "version": 1}, "dataset": {"name": name},
        "model": {"connection": "echo"}, "evaluators": [{"type": "exact_match"}],
    })  # fmt: skip
    post(server, f"/projects/default/prompts/{name}/versions", {"template": "A: {{question}}"})
    assert asyncio.run(final_state(server, "default", baseline["job_id"])) == "succeeded", server.log_tail()
    done = httpx.get(f"{server.api}/projects/default/evals/runs/{baseline['id']}", headers=auth(server)).json()
    assert (done["state"], done["aggregates"]["passed"]) == ("succeeded", 3), done
    return {"AGIFLOW_EVALS_PROMPT": name, "AGIFLOW_EVALS_DATASET": name, "AGIFLOW_EVALS_RUN": baseline["id"],
            "AGIFLOW_EVALS_ITEMS": str(len(EVAL_ITEMS))}  # fmt: skip


# Three traces of two spans each (a request and the chat call inside it), as an instrumented app sends
# them: one failed chat call, and one model without a price (its cost is unknown, not $0).
TRACES: list[dict[str, Any]] = [
    {"root": "answer question", "question": "What is 2+2?", "answer": "4", "model": "gpt-4o"},
    {"root": "summarise", "question": "Summarise the news", "answer": "Nothing happened", "model": "house-model"},
    {"root": "answer question", "question": "Divide by zero?", "answer": None, "model": "gpt-4o", "failed": True},
]


def seed_traces(server: JupyterServer) -> dict[str, str]:
    """A project of its own holding only ``TRACES`` (so the dashboard's totals are exactly theirs), sent
    through the OTLP receiver with an editor key and waited for until the API lists them and the metrics
    count their spans. Returns the variables traces.test.mjs reads."""
    project = f"traces-{uuid.uuid4().hex[:6]}"
    post(server, "/projects", {"slug": project, "name": f"Traces {project}"})
    key = post(server, f"/projects/{project}/keys", {"name": "browser test app", "role": "editor"})["secret"]
    endpoint = f"{server.api}/otel/v1/traces"
    seeded = []
    for t in TRACES:
        trace_id = export(endpoint, key, root=t["root"], model=t["model"], question=t["question"],
                          answer=t["answer"], failed=bool(t.get("failed")))  # fmt: skip
        seeded.append({**t, "id": trace_id, "status": "error" if t.get("failed") else "ok"})
    spans = 2 * len(TRACES)
    deadline = time.monotonic() + 90
    while True:
        listed = get(server, f"/projects/{project}/traces", {"limit": "50"})["items"]
        now = datetime.now(UTC)
        metrics = get(server, f"/projects/{project}/metrics", {
            "start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(minutes=1)).isoformat(),
            "bucket": "minute", "measures": "count",
        })  # fmt: skip
        counted = sum(p["count"] or 0 for p in metrics["points"])
        if {t["trace_id"] for t in listed} == {t["id"] for t in seeded} and counted == spans:
            break
        assert time.monotonic() < deadline, f"traces not queryable: {listed}, {counted} spans\n{server.log_tail()}"
        time.sleep(0.5)
    return {"AGIFLOW_TRACES_PROJECT": project, "AGIFLOW_TRACES": json.dumps(seeded),
            "AGIFLOW_TRACES_SPANS": str(spans)}  # fmt: skip


BIG_TRACE_CHILDREN = 250  # more spans than the traces view asks for at once (200): its tree loads the rest


def seed_big_trace(server: JupyterServer) -> dict[str, str]:
    """One trace of a root and ``BIG_TRACE_CHILDREN`` tool calls, in a project of its own (so the other
    scenarios' counts stay theirs), exported in batches by the OpenTelemetry SDK."""
    project = f"big-{uuid.uuid4().hex[:6]}"
    post(server, "/projects", {"slug": project, "name": f"Big trace {project}"})
    key = post(server, f"/projects/{project}/keys", {"name": "browser test app", "role": "editor"})["secret"]
    provider = TracerProvider(resource=Resource.create({"service.name": "agent-app"}))
    exporter = OTLPSpanExporter(endpoint=f"{server.api}/otel/v1/traces", headers={"Authorization": f"Bearer {key}"})
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=100))
    tracer = provider.get_tracer("agiflow-tests")
    with tracer.start_as_current_span("agent run") as root:
        for i in range(BIG_TRACE_CHILDREN):
            with tracer.start_as_current_span(f"tool call {i:03d}"):
                pass
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = BIG_TRACE_CHILDREN + 1
    deadline = time.monotonic() + 90
    while True:
        r = httpx.get(f"{server.api}/projects/{project}/traces/{trace_id}", params={"limit": "1000"},
                      headers=auth(server), timeout=30)  # fmt: skip
        if r.status_code == 200 and len(r.json()["spans"]) == spans:
            break
        assert time.monotonic() < deadline, f"big trace not stored: {r.status_code} {r.text[:200]}"
        time.sleep(0.5)
    return {"AGIFLOW_BIG_PROJECT": project, "AGIFLOW_BIG_TRACE": trace_id, "AGIFLOW_BIG_SPANS": str(spans)}


def get(server: JupyterServer, path: str, params: dict[str, str]) -> dict[str, Any]:
    r = httpx.get(server.api + path, params=params, headers=auth(server), timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def post(server: JupyterServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(server.api + path, json=body, headers=auth(server), timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def auth(server: JupyterServer) -> dict[str, str]:
    return {"Authorization": f"token {server.token}"}


async def final_state(server: JupyterServer, project: str, job_id: str, timeout: float = 240) -> str:
    """The job's final state, as the project's event WebSocket reports it (replayed from the start)."""
    url = server.url.replace("http://", "ws://") + f"agiflow/api/v1/events?project={project}&after=0"
    ws = await websocket_connect(HTTPRequest(url, headers=auth(server)))
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await ws.read_message()
                assert message is not None, "the server closed the events socket"
                event = json.loads(message)
                if event["job_id"] == job_id and event["type"] == "state" and event["data"]["state"] in FINAL:
                    return str(event["data"]["state"])
    finally:
        ws.close()
