"""The notebook widgets against a real server: each widget is driven through the messages its front end sends
(``widget.handle(message)``, what ``model.send`` reaches) and through its synced state, and the change is
read back from the REST API. Then the SDK objects' displays: escaped static HTML everywhere, the widget
itself inside a notebook kernel."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_core.paths import jupyter_runtime_dir
from pydantic import ValidationError

from agiflow_lab import Client
from agiflow_lab.widgets import DatasetView, EvalRunView, MetricsView, PromptEditor, TraceView
from agiflow_lab.widgets._display import WIDGET_MIME
from tests.support.api import Api
from tests.support.evals import qa_items
from tests.support.kernels import ready_client
from tests.support.polling import until
from tests.support.servers import JupyterServer
from tests.support.traces import export

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
async def owner_key(api: Api, project: str) -> str:
    return await api.new_key(project, "owner")


@pytest.fixture
def client(jupyter: JupyterServer, owner_key: str, project: str) -> Iterator[Client]:
    with Client(url=jupyter.url, api_key=owner_key, project=project) as c:
        c.prompts.create("greet", "Hello {{name}} from {{place}}!", labels=["production"], commit_message="first")
        yield c


def settle(widget: Any, message: dict[str, Any]) -> None:
    """Send one front-end message and wait for its action to finish; it must not have failed."""
    widget.handle(message).result(timeout=60)
    assert widget.error == "", widget.error


def eventually(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


# --- PromptEditor ---------------------------------------------------------------------------------------------


async def test_the_editor_renders_as_variables_are_typed_and_saves_a_new_version(
    client: Client, api: Api, project: str
) -> None:
    editor = PromptEditor(client, "greet")
    assert (editor.version, editor.latest, editor.prompt_type) == (1, 1, "text")
    assert editor.variables == ["name", "place"] and editor.missing == ["name", "place"]
    assert editor.rendered == "Hello {{name}} from {{place}}!"

    editor.values = {"name": "Ada"}  # the form's inputs, synced state
    assert editor.rendered == "Hello Ada from {{place}}!" and editor.missing == ["place"]
    editor.template = "Hi {{name}}, you seem {{mood}}."  # the text area: variables are found as it changes
    assert editor.variables == ["name", "mood"]
    editor.values = {"name": "Ada", "mood": "glad"}
    assert editor.rendered == "Hi Ada, you seem glad." and editor.missing == []

    settle(editor, {"type": "save", "commit_message": "friendlier", "labels": ["staging"]})
    r = await api.get(f"/projects/{project}/prompts/greet", params={"version": 2})
    assert r.status_code == 200, r.text
    saved = r.json()
    assert (saved["template"], saved["commit_message"], saved["labels"]) == (
        "Hi {{name}}, you seem {{mood}}.", "friendlier", ["staging"],
    )  # fmt: skip
    assert (editor.version, editor.latest, editor.notice) == (2, 2, "Saved v2")
    assert [v["version"] for v in editor.versions] == [2, 1]
    assert editor.labels == {"production": 1, "staging": 2}
    assert client.prompts.get("greet", label="latest").version == 2  # the client's own cache saw the write


async def test_a_chat_prompt_is_edited_message_by_message(client: Client, api: Api, project: str) -> None:
    client.prompts.create("support", [{"role": "system", "content": "You help {{company}}."},
                                      {"role": "user", "content": "{{question}}"}])  # fmt: skip
    editor = PromptEditor(client, "support")
    assert editor.prompt_type == "chat" and editor.variables == ["company", "question"]
    editor.chat = [editor.chat[0], {"role": "user", "content": "{{question}} Answer in {{language}}."}]
    editor.values = {"company": "Acme", "question": "Where is my order?", "language": "French"}
    assert editor.rendered == "system: You help Acme.\n\nuser: Where is my order? Answer in French."
    settle(editor, {"type": "save", "commit_message": "", "labels": []})
    r = await api.get(f"/projects/{project}/prompts/support", params={"version": 2})
    assert r.json()["template"][1] == {"role": "user", "content": "{{question}} Answer in {{language}}."}


async def test_the_editor_moves_a_label_and_diffs_two_versions(client: Client, api: Api, project: str) -> None:
    client.prompts.add_version("greet", "Hi {{name}}!", config={"temperature": 0.2})
    editor = PromptEditor(client, "greet", label="production")
    assert editor.version == 1

    settle(editor, {"type": "move_label", "label": "production", "version": 2})
    r = await api.get(f"/projects/{project}/prompts/greet", params={"label": "production"})
    assert r.json()["version"] == 2
    assert editor.labels["production"] == 2 and editor.notice == "production → v2"

    settle(editor, {"type": "diff", "from_version": 1, "to_version": 2})
    assert editor.diff is not None
    assert "-Hello {{name}} from {{place}}!" in editor.diff["template_diff"]
    assert "+Hi {{name}}!" in editor.diff["template_diff"]
    assert editor.diff["variables_removed"] == ["place"]
    assert editor.diff["config_changes"] == [{"key": "temperature", "before": None, "after": 0.2}]

    settle(editor, {"type": "load", "version": 2})
    assert (editor.template, editor.variables) == ("Hi {{name}}!", ["name"])


async def test_try_it_calls_the_connection_and_shows_output_tokens_latency_and_cost(client: Client) -> None:
    editor = PromptEditor(client, "greet")
    assert "echo" in [c["name"] for c in editor.connections]
    editor.values = {"name": "Ada", "place": "Oslo"}
    settle(editor, {"type": "try", "connection": "echo", "model": ""})
    trial = editor.trial
    assert trial is not None and trial["ok"], trial
    assert trial["output"] == "Hello Ada from Oslo!"  # the built-in echo answers with the prompt it got
    assert trial["connection"] == "echo" and trial["latency_ms"] >= 0
    assert trial["tokens_in"] is not None and trial["tokens_out"] is not None
    assert trial["cost_usd"] == 0  # echo's price row: free, not unpriced

    editor.values = {"name": "Ada"}
    editor.handle({"type": "try", "connection": "echo", "model": ""}).result(timeout=30)
    assert "fill in every variable first: place" in editor.error


async def test_a_message_that_does_not_fit_is_refused_and_a_viewer_cannot_save(
    client: Client, api: Api, project: str, jupyter: JupyterServer
) -> None:
    editor = PromptEditor(client, "greet")
    editor.handle({"type": "save", "commit_message": "x", "labels": "production"}).result(timeout=10)
    assert editor.error.startswith("unexpected message from the front end: save.labels")
    editor.handle({"type": "drop_table"}).result(timeout=10)
    assert "unexpected message" in editor.error

    with pytest.raises(ValidationError):  # synced state written by the front end is typed too
        editor.chat = [{"role": "wizard", "content": "hi"}]

    viewer_key = await api.new_key(project, "viewer")
    with Client(url=jupyter.url, api_key=viewer_key, project=project) as viewer:
        read_only = PromptEditor(viewer, "greet")
        read_only.template = "changed"
        read_only.handle({"type": "save", "commit_message": "", "labels": []}).result(timeout=30)
    assert "403 forbidden" in read_only.error
    r = await api.get(f"/projects/{project}/prompts/greet/summary")
    assert r.json()["latest_version"] == 1


# --- EvalRunView ---------------------------------------------------------------------------------------------


async def test_the_run_view_follows_a_run_then_shows_failures_first_and_compares(client: Client) -> None:
    client.prompts.create("qa", "Q: {{question}}")
    client.datasets.create("qa", [{"id": i["id"], "input": i["input"], "expected": i["expected"]}
                                  for i in qa_items(6, wrong={1, 4})])  # fmt: skip
    first = client.evals.run("qa", "qa", evaluators=["exact_match"])
    view = EvalRunView(client, first.id)  # follows it on threads of its own: this test's thread stays free
    eventually(lambda: view.run is not None and view.run["state"] == "succeeded" and not view.live, "the run")
    assert view._events is not None and view._events.connected.wait(10)  # the events socket, not only polling
    assert view.run is not None
    assert (view.run["items_done"], view.run["items_total"], view.run["passed"]) == (6, 6, 4)
    assert [(e["name"], e["passed"], e["scored"]) for e in view.evaluators] == [("exact_match", 4, 6)]
    eventually(lambda: len(view.items) == 6, "the items")
    assert [i["passed"] for i in view.items] == [False, False, True, True, True, True]
    assert {json.loads(i["input"])["question"] for i in view.items[:2]} == {"question 1", "question 4"}

    client.prompts.add_version("qa", "{{question}}")
    second = client.evals.run("qa", "qa", evaluators=["exact_match"], wait=True, progress=False)
    settle(view, {"type": "refresh"})
    assert second.id in [r["id"] for r in view.others]
    settle(view, {"type": "compare", "run_id": second.id})
    assert view.comparison is not None
    assert (view.comparison["regressed"], view.comparison["improved"]) == (4, 0)
    assert {i["change"] for i in view.comparison["items"]} == {"regressed"}
    view.close()


# --- TraceView and MetricsView -------------------------------------------------------------------------------


async def test_the_trace_view_holds_the_span_tree_and_the_selected_spans_input_and_output(
    client: Client, api: Api, project: str
) -> None:
    key = await api.new_key(project, "editor")
    trace_id = await asyncio.to_thread(
        export, f"{api.server.api}/otel/v1/traces", key, question="What is 2+2?", answer="4"
    )

    async def whole() -> bool:
        rows = await asyncio.to_thread(client.traces.list)
        return bool(((rows["trace_id"] == trace_id) & (rows["span_count"] == 2) & rows["has_root"]).any())

    await until(whole, "the trace to be stored", timeout=60)
    view = TraceView(client, trace_id)
    assert [(s["depth"], s["name"]) for s in view.spans] == [(0, "answer question"), (1, "chat gpt-4o")]
    assert view.detail is not None
    assert (view.detail["name"], view.detail["input"], view.detail["output"]) == (
        "answer question",
        "What is 2+2?",
        "4",
    )
    settle(view, {"type": "select", "span_id": view.spans[1]["span_id"]})
    assert view.selected == view.spans[1]["span_id"]
    assert view.detail["name"] == "chat gpt-4o"
    assert json.loads(view.detail["attributes"])["gen_ai.request.model"] == "gpt-4o"

    metrics = MetricsView(client, hours=1, bucket="minute")
    assert metrics.points and sum(p["count"] for p in metrics.points) == 2
    assert sum(p["tokens"] for p in metrics.points) == 1100
    settle(metrics, {"type": "reload", "hours": 24, "bucket": "hour"})
    assert (metrics.hours, metrics.bucket) == (24, "hour")
    assert sum(p["count"] for p in metrics.points) == 2
    metrics.handle({"type": "reload", "hours": 24, "bucket": "week"}).result(timeout=10)
    assert "bucket" in metrics.error

    html = client.traces.get(trace_id)._repr_html_()
    assert "answer question" in html and "chat gpt-4o" in html


# --- DatasetView ---------------------------------------------------------------------------------------------


async def test_the_dataset_view_pages_and_filters(client: Client) -> None:
    client.datasets.create("many", [{"id": f"i{n:02}", "input": {"question": f"question {n}"}} for n in range(45)])
    view = DatasetView(client, "many", page_size=20)
    assert (view.version, view.item_count, len(view.items), view.has_more) == (1, 45, 20, True)
    settle(view, {"type": "page", "page": 2})
    assert [i["id"] for i in view.items] == ["i40", "i41", "i42", "i43", "i44"] and not view.has_more
    settle(view, {"type": "filter", "text": "Question 1"})
    assert view.page == 0
    assert [i["id"] for i in view.items] == ["i01", *(f"i{n}" for n in range(10, 20))]
    settle(view, {"type": "filter", "text": "nothing like it"})
    assert view.items == [] and not view.has_more


# --- static HTML and the displays ----------------------------------------------------------------------------


async def test_static_html_escapes_whatever_the_data_holds(client: Client) -> None:
    prompt = client.prompts.create("hostile", HOSTILE + " {{x}}", commit_message=HOSTILE)
    dataset = client.datasets.create("hostile", [{"input": {"q": HOSTILE}}], description=HOSTILE)
    for html in (prompt._repr_html_(), dataset._repr_html_()):
        assert "<script" not in html and "<img" not in html, html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    run = client.evals.run("hostile", "hostile", evaluators=["exact_match"], name=HOSTILE, wait=True, progress=False)
    again = client.evals.run("hostile", "hostile", evaluators=["exact_match"], wait=True, progress=False)
    for html in (run._repr_html_(), run.compare(again)._repr_html_()):
        assert "<script" not in html and "<img" not in html, html
        assert "&lt;script&gt;" in html

    client.prompts.add_version("hostile", "{{x}} " + HOSTILE.upper())
    diff = PromptEditor(client, "hostile").compare(1, 2)
    html = diff._repr_html_()
    assert "<script" not in html.lower() and "<img" not in html.lower(), html
    assert "-&lt;script&gt;alert(&quot;x&quot;)" in html and "+{{x}} &lt;SCRIPT&gt;" in html

    # Outside a kernel (a script, this test) there is nothing to host a widget: the static view only.
    data, _ = prompt._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html"}


def test_in_a_notebook_sdk_objects_show_their_widget_and_wait_shows_the_live_run(
    jupyter: JupyterServer, client: Client, owner_key: str, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", jupyter.env["JUPYTER_PLATFORM_DIRS"])  # its kernels' runtime dir
    client.datasets.create("qa", [{"input": {"name": "Ann", "place": "Oslo"}, "expected": "Hello Ann from Oslo!"}])
    cell = (
        "from agiflow_lab import Client\n"
        f"client = Client(url={jupyter.url!r}, api_key={owner_key!r}, project={project!r})\n"
        "prompt = client.prompts.get('greet')\n"
        "display(prompt)\n"
        "run = client.evals.run('greet', 'qa', evaluators=['exact_match'])\n"
        "print(run.wait(timeout=120).state)\n"
        "import time\n"
        "from agiflow_lab.widgets import EvalRunView\n"
        "polled = EvalRunView(client, client.evals.run('greet', 'qa', evaluators=['exact_match']).id)\n"
        "deadline = time.monotonic() + 120\n"
        "while not polled.finished and time.monotonic() < deadline:\n"
        "    time.sleep(0.2)  # the kernel's main thread is busy: the view's own thread polls and updates\n"
        "print('polled', polled.model_id, polled.run['state'])\n"
        "import os\n"
        "os.environ['AGIFLOW_JOB_ID'] = 'job'  # a job's kernel (papermill): the static view only\n"
        "display(prompt)\n"
    )
    outputs = run_in_a_notebook(jupyter, cell)
    shown = [o for o in outputs if o["msg_type"] == "display_data"]
    assert len(shown) == 3, outputs
    editor, live_run, static = (o["content"]["data"] for o in shown)
    assert WIDGET_MIME in editor and "greet v1" in editor["text/html"]  # the static view rides along for reports
    assert WIDGET_MIME in live_run  # wait() displayed the EvalRunView
    assert WIDGET_MIME not in static and "greet v1" in static["text/html"]
    assert "succeeded" in "".join(o["content"].get("text", "") for o in outputs if o["msg_type"] == "stream")
    printed = "".join(o["content"].get("text", "") for o in outputs if o["msg_type"] == "stream").split()
    model_id = printed[printed.index("polled") + 1]
    updates = [o["content"]["data"]["state"] for o in outputs
               if o["msg_type"] == "comm_msg" and o["content"]["comm_id"] == model_id]  # fmt: skip
    states = [u["run"]["state"] for u in updates if u.get("run")]
    assert states and states[-1] == "succeeded", states  # reached the front end from the polling thread
    opened = [o for o in outputs if o["msg_type"] == "comm_open"]
    assert {o["content"]["data"]["state"].get("_anywidget_id") for o in opened} >= {
        "agiflow_lab.widgets.prompt_editor.PromptEditor", "agiflow_lab.widgets.eval_run.EvalRunView",
    }  # fmt: skip


def run_in_a_notebook(jupyter: JupyterServer, code: str) -> list[dict[str, Any]]:
    """Open a notebook as JupyterLab does (a session, whose kernel the server starts), run ``code`` and return
    every IOPub message it produced (display data, comm opens, streams)."""
    owner = httpx.Client(base_url=jupyter.url, headers={"Authorization": f"token {jupyter.token}"}, timeout=60)
    r = owner.post("api/sessions", json={"path": f"widgets-{uuid.uuid4().hex[:6]}.ipynb", "type": "notebook",
                                         "kernel": {"name": "python3"}})  # fmt: skip
    assert r.status_code == 201, r.text
    session = r.json()
    connection = Path(jupyter_runtime_dir()) / f"kernel-{session['kernel']['id']}.json"
    try:
        kc = ready_client(connection)
        seen: list[dict[str, Any]] = []
        try:
            reply = kc.execute_interactive(code, timeout=180, output_hook=seen.append)
        finally:
            kc.stop_channels()
    finally:
        owner.delete(f"api/sessions/{session['id']}")
        owner.close()
    errors = ["\n".join(o["content"]["traceback"]) for o in seen if o["msg_type"] == "error"]
    assert reply["content"]["status"] == "ok", "\n".join(errors)
    return seen
