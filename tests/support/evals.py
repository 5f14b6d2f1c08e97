"""Helpers for evaluation tests: a prompt, a dataset and a connection in one call each, and waiting for runs."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.support.api import Api

FINAL = {"succeeded", "failed", "cancelled"}


async def make_prompt(api: Api, project: str, name: str, template: Any, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "template": template, "type": "chat" if isinstance(template, list) else "text", **extra}
    r = await api.post(f"/projects/{project}/prompts", body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_dataset(api: Api, project: str, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    r = await api.post(f"/projects/{project}/datasets", {"name": name, "items": items})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def make_connection(api: Api, project: str, name: str, base_url: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "kind": "openai", "base_url": base_url, "api_key": "sk-test-secret", **extra}
    r = await api.post(f"/projects/{project}/models", body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def start_run(api: Api, project: str, body: dict[str, Any], **who: Any) -> dict[str, Any]:
    r = await api.post(f"/projects/{project}/evals/runs", body, **who)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def wait_run(api: Api, project: str, run_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = (await api.get(f"/projects/{project}/evals/runs/{run_id}")).json()
        if run["state"] in FINAL:
            return run
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} still {run.get('state')} after {timeout}s: {json.dumps(run)[:800]}")


async def results(api: Api, project: str, run_id: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = "&".join(
            f"{k}={v}" for k, v in {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}.items()
        )
        r = await api.get(f"/projects/{project}/evals/runs/{run_id}/results?{query}")
        assert r.status_code == 200, r.text
        page = r.json()
        items.extend(page["items"])
        if not (cursor := page["next_cursor"]):
            return items


def qa_items(n: int, *, wrong: set[int] = frozenset()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    """Items whose expected answer is what the echo provider returns for the prompt ``Q: {{question}}``,
    except the ``wrong`` ones."""
    return [
        {"id": f"q{i}", "input": {"question": f"question {i}"},
         "expected": f"wrong {i}" if i in wrong else f"Q: question {i}", "metadata": {"i": i}}
        for i in range(n)
    ]  # fmt: skip
