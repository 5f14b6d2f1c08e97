"""The seed's own SDK, agiflow-sdk 0.0.24 from PyPI, pointed at this server.

It pins an OpenTelemetry older than ours, so it lives in its own virtualenv (``.venvs/agiflow-sdk``,
made by ``scripts/test``); a missing virtualenv fails the test. The app (``tests/sdk_apps``) instruments
the real ``openai`` client against the scripted model server and is configured only by the SDK's own
environment variables, with the base URL this server documents.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.api import Api
from tests.support.polling import until

if TYPE_CHECKING:
    from tests.support.scripted_llm import ScriptedLLM

pytest_plugins = ["tests.support.scripted_llm"]

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venvs/agiflow-sdk/bin/python"


async def test_an_agiflow_sdk_app_traces_scores_and_updates(api: Api, project: str, scripted_llm: ScriptedLLM) -> None:
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: scripts/test makes it (pip install agiflow-sdk==0.0.24 openai)")
    key = await api.new_key(project, "editor")
    alias = f"conversation-{uuid.uuid4().hex[:8]}"
    env = {
        "PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
        "AGIFLOW_BASE_URL": f"{api.server.api}/otel", "AGIFLOW_API_KEY": key,
        "AGIFLOW_TELEMETRY": "false",  # its usage telemetry goes to a third party
        "APP_LLM_URL": scripted_llm.openai_base_url, "APP_TRACE_ALIAS": alias,
    }  # fmt: skip
    run = await asyncio.to_thread(
        subprocess.run, [str(PYTHON), str(REPO / "tests/sdk_apps/agiflow_sdk_app.py"), "What is 2+2?"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "What is 2+2?" in run.stdout  # the scripted model echoes by default

    async def traced() -> list[dict[str, object]]:
        r = await api.get(f"/projects/{project}/traces", params={"model": "gpt-4o-mini"})
        return [t for t in r.json()["items"] if t["has_root"] and t["span_count"] >= 2]

    await until(traced, "the app's trace to be stored", timeout=60)
    (summary,) = await traced()
    assert summary["name"] == "answer question.Workflow" and summary["status"] == "ok"  # the SDK names it so
    assert summary["tokens_in"] > 0 and summary["tokens_out"] > 0

    detail = (await api.get(f"/projects/{project}/traces/{summary['trace_id']}")).json()
    call = next(s for s in detail["spans"] if s["model"] == "gpt-4o-mini")
    assert call["span_type"] == "chat" and "What is 2+2?" in (call["input"] or "")
    assert "What is 2+2?" in (call["output"] or "") and call["service_name"] == "agiflow-sdk-app"
    assert [(s["name"], s["value"], s["source"], s["trace_alias"]) for s in detail["scores"]] == [
        ("score", 0.8, "api", alias)
    ]
    updated = [s for s in detail["spans"] if s["updates"]]
    assert [s["updates"] for s in updated] == [[{"reviewed": "yes"}]]
