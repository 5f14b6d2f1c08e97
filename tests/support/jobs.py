"""Helpers for job tests: wait for a state, read events, follow the WebSocket."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from tests.support.api import Api

FINAL = {"succeeded", "failed", "cancelled"}


async def submit(api: Api, project: str, body: dict[str, Any], **who: Any) -> dict[str, Any]:
    r = await api.post(f"/projects/{project}/jobs", body, **who)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def wait_for(
    api: Api, project: str, job_id: str, states: set[str] = FINAL, timeout: float = 90.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = (await api.get(f"/projects/{project}/jobs/{job_id}")).json()
        if job["state"] in states:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job.get('state')} after {timeout}s: {json.dumps(job)[:500]}")


async def events(api: Api, project: str, job_id: str) -> list[dict[str, Any]]:
    r = await api.get(f"/projects/{project}/jobs/{job_id}/events")
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# A job's state events: queued, then running; an attempt taken over (its worker dead, or looking dead to a
# short failure threshold on a loaded machine) adds retrying and running again; then exactly one final state.
LEGAL_STATES = re.compile(r"queued running( retrying running)* (succeeded|failed|cancelled)")


def states_of(evts: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["state"] for e in evts if e["type"] == "state"]


def notebook_of(*sources: str) -> dict[str, Any]:
    """A Python notebook of code cells; the first one tagged ``parameters`` when it starts with ``# parameters``."""
    cells = [
        {"cell_type": "code", "source": src, "outputs": [], "execution_count": None,
         "metadata": {"tags": ["parameters"]} if src.startswith("# parameters") else {}}
        for src in sources
    ]  # fmt: skip
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}  # fmt: skip


async def put_notebook(api: Api, notebook: dict[str, Any], prefix: str = "nb") -> str:
    """Save ``notebook`` in the Jupyter server's files (the owner's contents API); returns its path."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}.ipynb"
    r = await api.client.put(api.server.url + f"api/contents/{name}", headers=api.headers(),
                             json={"type": "notebook", "format": "json", "content": notebook})  # fmt: skip
    assert r.status_code in (200, 201), r.text
    return name
