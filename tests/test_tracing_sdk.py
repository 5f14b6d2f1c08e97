"""Monitoring from an app's and a notebook's point of view: ``agiflow_lab.tracing.init()`` exports real spans
(the official ``openai`` client instrumented by OpenInference, calling the scripted OpenAI-compatible server)
to the test server, whose supervised worker stores them; the SDK reads them back as DataFrames and trees.

The instrumented apps run in processes of their own (a script, a notebook kernel): ``init()`` sets the
process's global tracer provider and instruments ``openai`` for good, which this test process must not do to
the other tests' provider clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agiflow_lab import Client, tracing
from agiflow_lab.errors import InvalidInput, NotFound
from agiflow_lab.sdk import DiscoveryError
from tests.support.api import Api
from tests.support.polling import until
from tests.support.servers import JupyterServer
from tests.support.traces import export
from tests.test_sdk import _execute

if TYPE_CHECKING:
    from tests.support.scripted_llm import ScriptedLLM

pytest_plugins = ["tests.support.scripted_llm"]

QUESTION = "What is the capital of France?"
QA = [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "{{question}}"}]

# An app as its author would write it: init(), a prompt from the registry, an instrumented openai call.
APP = """
import json, os
import openai
from opentelemetry import trace
from agiflow_lab import Client, tracing

provider = tracing.init(service_name="qa-app")
again = tracing.init()  # e.g. a second module calling it: the same provider, nothing exported twice
processors = len(provider._active_span_processor._span_processors)
instrumented = tracing.instrumented()

prompt = Client().prompts.get("qa")
llm = openai.OpenAI(base_url=os.environ["LLM_URL"], api_key="sk-scripted", max_retries=0)
with trace.get_tracer("qa-app").start_as_current_span("answer question") as root:
    root.set_attribute("session.id", "s-42")
    root.set_attribute("user.id", "ada")
    root.set_attribute("input.value", os.environ["QUESTION"])
    messages = prompt.render_messages(question=os.environ["QUESTION"])
    reply = llm.chat.completions.create(model="gpt-4o", messages=messages)
    root.set_attribute("output.value", reply.choices[0].message.content)
tracing.shutdown()
print(json.dumps({"trace_id": format(root.get_span_context().trace_id, "032x"), "same": again is provider,
                  "processors": processors, "instrumented": instrumented}))
"""


@pytest.fixture
async def editor_key(api: Api, project: str) -> str:
    return await api.new_key(project, "editor")


@pytest.fixture
def client(jupyter: JupyterServer, editor_key: str, project: str) -> Iterator[Client]:
    with Client(url=jupyter.url, api_key=editor_key, project=project, cache=False) as c:
        yield c


# An app that set up OpenTelemetry itself: init() joins its provider, and starts again after a shutdown().
OWN_PROVIDER_APP = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from agiflow_lab import tracing

own = TracerProvider()
trace.set_tracer_provider(own)
assert tracing.init(instrument=False) is own
tracing.shutdown()
assert tracing.init(instrument=False, batch=False) is own
with trace.get_tracer("app").start_as_current_span("after a restart") as span:
    pass
print(json.dumps({"trace_id": format(span.get_span_context().trace_id, "032x"),
                  "processors": len(own._active_span_processor._span_processors)}))
"""


def run_app(
    jupyter: JupyterServer, key: str, project: str, cwd: Path, llm: ScriptedLLM | None = None, code: str = APP
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "AGIFLOW_", "OTEL_"))}
    env.update(AGIFLOW_URL=jupyter.url, AGIFLOW_API_KEY=key, AGIFLOW_PROJECT=project, QUESTION=QUESTION,
               LLM_URL=llm.openai_base_url if llm else "")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def stored(client: Client, trace_id: str, spans: int, **filters: Any) -> dict[str, Any]:
    """The trace's row in the list once the span writer has stored all its spans."""

    async def whole() -> dict[str, Any] | None:
        rows = await asyncio.to_thread(client.traces.list, **filters)
        found = rows[(rows["trace_id"] == trace_id) & (rows["span_count"] == spans) & rows["has_root"]]
        return found.iloc[0].to_dict() if len(found) else None

    row: dict[str, Any] = await until(whole, f"trace {trace_id} to be stored whole", timeout=60)
    return row


async def test_an_instrumented_app_is_traced_and_read_back_as_dataframes(
    api: Api, project: str, jupyter: JupyterServer, editor_key: str, client: Client,
    scripted_llm: ScriptedLLM, tmp_path: Path,
) -> None:  # fmt: skip
    r = await api.post(
        f"/projects/{project}/prompts", {"name": "qa", "type": "chat", "template": QA, "labels": ["production"]}
    )
    assert r.status_code == 201, r.text
    await scripted_llm.ascript(rules=[{"match": "capital of France", "reply": "Paris"}])

    app = await asyncio.to_thread(run_app, jupyter, editor_key, project, tmp_path, scripted_llm)
    assert (app["same"], app["processors"], app["instrumented"]) == (True, 1, ["openai"])
    trace_id = app["trace_id"]

    # The list: one row per trace, with the model, tokens and previews the instrumented call produced, and the
    # prompt version rendered inside the root span.
    row = await stored(client, trace_id, 2, prompt_name="qa")
    assert row["name"] == "answer question" and row["status"] == "ok"
    assert list(row["models"]) == ["gpt-4o"]
    assert (row["tokens_in"], row["tokens_out"]) == (10, 1)  # the scripted server counts words (4 + 6 in)
    assert (row["input_preview"], row["output_preview"]) == (QUESTION, "Paris")
    assert (row["prompt_name"], row["prompt_version"]) == ("qa", 1)
    assert (row["session_id"], row["user_id"]) == ("s-42", "ada")
    assert isinstance(row["start_time"], pd.Timestamp) and str(row["start_time"].tz) == "UTC"

    listed = await asyncio.to_thread(client.traces.list, prompt_name="qa", prompt_version=1, model="gpt-4o")
    assert listed["trace_id"].tolist() == [trace_id]
    none = await asyncio.to_thread(client.traces.list, prompt_name="qa", prompt_version=2)
    assert none.empty and "trace_id" in none.columns and str(none["start_time"].dtype).endswith("UTC]")

    # The tree: the root, and the OpenAI call inside it with what was sent and answered.
    trace = await asyncio.to_thread(client.traces.get, trace_id)
    assert trace.root is not None and trace.root.name == "answer question"
    assert (trace.root.prompt_name, trace.root.prompt_version) == ("qa", 1)
    assert trace.root.attributes["agiflow.prompt.label"] == "production"
    [call] = trace.children(trace.root)
    assert (call.span_type, call.model, call.tokens_in, call.tokens_out) == ("llm", "gpt-4o", 10, 1)
    assert call.input is not None and QUESTION in call.input
    assert call.output is not None and "Paris" in call.output
    assert trace.root.service_name == "qa-app"
    text = repr(trace)
    assert text.splitlines()[1].startswith("answer question") and "└─ " in text and "gpt-4o" in text

    spans = await asyncio.to_thread(client.spans, trace_id)
    assert spans["span_id"].tolist() == [s.span_id for s in trace.spans]
    assert spans["parent_span_id"].isna().tolist() == [True, False]  # pandas' missing value, not None
    assert spans["parent_span_id"].iloc[1] == trace.root.span_id
    assert spans["start_time"].dt.tz is not None

    sessions = await asyncio.to_thread(client.sessions)
    assert sessions[["id", "trace_count", "tokens_in"]].values.tolist() == [["s-42", 1, 10]]
    users = await asyncio.to_thread(client.users)
    assert users["id"].tolist() == ["ada"]

    # Metrics, from the rollups: two spans in one minute; by model, the call's.
    now = datetime.now(UTC)
    window = {"start": now - timedelta(hours=1), "end": now + timedelta(minutes=5), "bucket": "minute"}
    metrics = await asyncio.to_thread(client.metrics, **window, measures=["count", "tokens"])
    assert list(metrics.columns) == ["time", "count", "tokens_in", "tokens_out"]
    assert (metrics["count"].sum(), metrics["tokens_in"].sum()) == (2, 10)
    by_model = await asyncio.to_thread(client.metrics, **window, group_by="model", measures="count")
    assert by_model.loc[by_model["model"] == "gpt-4o", "count"].tolist() == [1]
    by_prompt = await asyncio.to_thread(client.metrics, **window, group_by="prompt_version")
    assert {"prompt_name", "prompt_version", "latency_p95_ms", "cost_usd"} <= set(by_prompt.columns)


async def test_init_joins_the_apps_own_provider_and_starts_again_after_shutdown(
    project: str, jupyter: JupyterServer, editor_key: str, client: Client, tmp_path: Path
) -> None:
    app = await asyncio.to_thread(run_app, jupyter, editor_key, project, tmp_path, code=OWN_PROVIDER_APP)
    assert app["processors"] == 2  # the first exporter stays, silent: a provider cannot drop a processor
    row = await stored(client, app["trace_id"], 1)
    assert row["name"] == "after a restart"


async def run_in_a_notebook(jupyter: JupyterServer, code: str) -> str:
    """Open a notebook as JupyterLab does (a session, whose kernel the server starts), run ``code``, close it."""
    headers = {"Authorization": f"token {jupyter.token}"}
    async with httpx.AsyncClient(base_url=jupyter.url, headers=headers, timeout=60) as owner:
        r = await owner.post("api/sessions", json={"path": f"traced-{uuid.uuid4().hex[:6]}.ipynb",
                                                   "type": "notebook", "kernel": {"name": "python3"}})  # fmt: skip
        assert r.status_code == 201, r.text
        session = r.json()
        kernel = session["kernel"]["id"]
        try:
            # A kernel still starting can miss heartbeats on a busy machine, which the blocking client takes
            # for a dead kernel before anything is run: then try again.
            async def ran() -> str | None:
                try:
                    return await asyncio.to_thread(_execute, kernel, code)
                except RuntimeError as exc:
                    if "died before replying" in str(exc):
                        return None
                    raise

            output: str = await until(ran, "the notebook's kernel to run the cell", timeout=90, every=0.5)
            return output
        finally:
            await owner.delete(f"api/sessions/{session['id']}")


async def test_init_in_a_notebook_kernel_finds_its_server_without_configuration(
    project: str, jupyter: JupyterServer, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", jupyter.env["JUPYTER_PLATFORM_DIRS"])  # its kernels' runtime dir
    cell = (
        "import os\n"
        "assert not {'AGIFLOW_URL', 'AGIFLOW_API_KEY', 'AGIFLOW_PROJECT'} & set(os.environ)\n"
        "from opentelemetry import trace\n"
        "from agiflow_lab import tracing\n"
        f"tracing.init(project={project!r}, instrument=False)\n"
        "with trace.get_tracer('notebook').start_as_current_span('notebook cell') as span:\n"
        "    pass\n"
        "assert tracing.flush()\n"
        "print(format(span.get_span_context().trace_id, '032x'))\n"
    )
    trace_id = (await run_in_a_notebook(jupyter, cell)).strip()
    row = await stored(client, trace_id, 1)
    assert row["name"] == "notebook cell"


def test_a_prompt_rendered_inside_a_span_marks_it_and_outside_one_changes_nothing(client: Client) -> None:
    client.prompts.create("greet", "Hello {{name}}", labels=["production"])
    client.prompts.add_version("greet", "Hi {{name}}")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # not the global one: this process stays untraced
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    client.prompts.get("greet").render(name="Ann")  # no span in progress: nothing to mark, nothing raised
    with tracer.start_as_current_span("by label"):
        client.prompts.get("greet").render(name="Ann")
    with tracer.start_as_current_span("by version"):
        client.prompts.get("greet", version=2).render(name="Ann")
    marks = {s.name: dict(s.attributes or {}) for s in exporter.get_finished_spans()}
    assert marks["by label"] == {"agiflow.prompt.name": "greet", "agiflow.prompt.version": 1,
                                 "agiflow.prompt.label": "production"}  # fmt: skip
    assert marks["by version"] == {"agiflow.prompt.name": "greet", "agiflow.prompt.version": 2}


async def test_scores_given_through_the_sdk_are_listed_filtered_and_averaged(
    api: Api, project: str, editor_key: str, client: Client
) -> None:
    trace_id = await asyncio.to_thread(export, f"{api.server.api}/otel/v1/traces", editor_key)
    await stored(client, trace_id, 2)
    trace = await asyncio.to_thread(client.traces.get, trace_id)
    assert trace.root is not None
    [call] = trace.children(trace.root)

    helpful = client.scores.create(trace_id, "helpful", True)
    quality = client.scores.create(trace_id, "quality", 0.8, span_id=call.span_id, comment="good")
    assert (helpful.data_type, helpful.source, helpful.span_id) == ("boolean", "api", None)
    assert (quality.data_type, quality.value, quality.span_id, quality.comment) == (
        "numeric",
        0.8,
        call.span_id,
        "good",
    )
    assert client.scores.create(trace_id, "tone", "friendly").data_type == "categorical"

    scores = client.scores.list(trace_id=trace_id)
    assert sorted(scores["name"]) == ["helpful", "quality", "tone"]
    assert str(scores["created_at"].dtype).endswith("UTC]")
    assert client.scores.list(trace_id=trace_id, name="quality")["id"].tolist() == [quality.id]
    assert {s.name for s in client.traces.get(trace_id).scores} == {"helpful", "quality", "tone"}
    assert client.traces.list(score_name="quality", score_min=0.5)["trace_id"].tolist() == [trace_id]
    assert client.traces.list(score_name="quality", score_min=0.9).empty

    now = datetime.now(UTC)
    means = client.metrics(start=now - timedelta(hours=1), end=now + timedelta(minutes=5), measures="count,scores")
    assert means["score.quality"].dropna().tolist() == [pytest.approx(0.8)]
    assert means["score.helpful"].dropna().tolist() == [1.0]

    client.scores.delete(str(helpful.id))
    assert sorted(client.scores.list(trace_id=trace_id)["name"]) == ["quality", "tone"]


def test_reads_fail_the_sdk_way(client: Client) -> None:
    with pytest.raises(NotFound):
        client.traces.get("0" * 32)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        client.traces.list(start=datetime.now())


def test_init_without_a_server_says_what_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AGIFLOW_URL", "AGIFLOW_API_KEY", "JUPYTER_SERVER_URL", "JPY_PARENT_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(DiscoveryError, match="AGIFLOW_URL"):
        tracing.init()
    assert tracing.instrumented() == []  # nothing was set up
