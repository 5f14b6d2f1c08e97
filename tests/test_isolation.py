"""Cross-project isolation: the owner key of project B can read, change or run nothing of project A.

Every operation in the OpenAPI document is tried (so a route added later is covered without editing this
file), twice: against A's path with B's key (refused: 403/404), and against B's own path naming A's
resources by id or name (jobs, runs, keys, items, ...: not found). No answer may carry A's content, and
A reads the same afterwards, audit log included.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.api import Api
from tests.support.evals import make_dataset, make_prompt, start_run, wait_run
from tests.support.jobs import submit, wait_for
from tests.support.polling import until
from tests.support.traces import export

# Path parameters that name one of A's resources; a route in B that takes one must not find A's.
A_SPECIFIC = {"name", "version", "label", "key_id", "item_id", "run_id", "job_id", "silence_id", "notification_id"}
ZERO_UUID = "00000000-0000-0000-0000-000000000000"


@dataclass
class World:
    a: str
    b: str
    b_key: str
    ids: dict[str, str]
    secrets: list[str]  # content of A that B's key holder has no way of knowing
    run_ids: list[str] = field(default_factory=list)


@pytest.fixture
async def world(api: Api) -> World:
    marker = f"m{uuid.uuid4().hex}"
    api_secret, header_secret = f"sk-a-{uuid.uuid4().hex}", f"hdr-{uuid.uuid4().hex}"
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    for slug, description in ((a, f"{marker}-desc"), (b, "B")):
        r = await api.post("/projects", {"slug": slug, "name": slug, "description": description})
        assert r.status_code == 201, r.text
    await make_prompt(api, a, "greet", f"Q: {{{{question}}}} {marker}-prompt", labels=["production"])
    await make_dataset(api, a, "qa", [{"id": "q0", "input": {"question": f"{marker}-item"}, "expected": "x"},
                                      {"id": "q1", "input": {"question": "two"}, "expected": "y"}])  # fmt: skip
    r = await api.post(f"/projects/{a}/models", {
        "name": "conn", "kind": "openai", "base_url": "https://llm.example.invalid/v1", "default_model": "m",
        "api_key": api_secret, "description": f"{marker}-conn", "options": {"headers": {"X-Gateway": header_secret}},
    })  # fmt: skip
    assert r.status_code == 201, r.text
    r = await api.put(f"/projects/{a}/prices/gpt-4o", {"input_per_million": 1.5, "output_per_million": 2.5})
    assert r.status_code == 200, r.text
    created_key = (await api.post(f"/projects/{a}/keys", {"name": f"{marker}-key", "role": "viewer"})).json()
    r = await api.post(f"/projects/{a}/schedules", {"name": "nightly", "cron": "0 3 * * *", "paused": True,
                                                    "description": f"{marker}-schedule",
                                                    "job": {"notebook": "builtin:hello"}})  # fmt: skip
    assert r.status_code == 201, r.text
    r = await api.post(f"/projects/{a}/alerts/rules", {"name": "failures", "metric": "job_failures", "comparison": ">",
                                                       "threshold": 0, "enabled": False,
                                                       "description": f"{marker}-rule"})  # fmt: skip
    assert r.status_code == 201, r.text  # disabled: the evaluator leaves it alone, so A's snapshots stay equal
    r = await api.post(f"/projects/{a}/alerts/silences", {"ends_at": "2099-01-01T00:00:00Z", "reason": f"{marker}-s"})
    assert r.status_code == 201, r.text
    silence_id = r.json()["id"]
    r = await api.post(f"/projects/{a}/notifications/channels", {"name": "hook", "kind": "webhook",
                                                                 "webhook": {"url": "https://hook.example.invalid/"}})  # fmt: skip
    assert r.status_code == 201, r.text
    hook_secret = r.json()["secret"]
    assert (
        await api.post(f"/projects/{a}/notifications/channels", {"name": "inbox", "kind": "in_app"})
    ).status_code == 201
    assert (await api.post(f"/projects/{a}/notifications/channels/inbox/test")).status_code == 202

    async def notified() -> list[dict[str, Any]]:
        return list((await api.get(f"/projects/{a}/notifications")).json()["items"])

    [notification] = await until(notified, "project A's in-app test notification", timeout=30)
    job = await submit(api, a, {"notebook": "builtin:hello", "parameters": {"name": f"{marker}-job"}})
    run_body = {"prompt": {"name": "greet"}, "dataset": {"name": "qa"}, "model": {"connection": "echo"},
                "evaluators": [{"type": "exact_match"}]}  # fmt: skip
    runs = [await start_run(api, a, run_body), await start_run(api, a, run_body)]  # two: compare needs a pair
    assert (await wait_for(api, a, job["id"]))["state"] == "succeeded"
    for run in runs:
        assert (await wait_run(api, a, run["id"]))["state"] == "succeeded"
    trace_id = await asyncio.to_thread(
        export, f"{api.server.api}/otel/v1/traces", await api.new_key(a, "editor"), question=f"{marker}-trace"
    )

    async def trace_stored() -> bool:  # both spans: the snapshots before and after must see the same trace
        r = await api.get(f"/projects/{a}/traces/{trace_id}")
        return r.status_code == 200 and len(r.json()["spans"]) == 2

    await until(trace_stored, "project A's trace to be stored whole", timeout=60)
    span_id = (await api.get(f"/projects/{a}/traces/{trace_id}")).json()["spans"][0]["span_id"]
    r = await api.post(f"/projects/{a}/scores", {"trace_id": trace_id, "name": "q", "value": 1, "comment": marker})
    assert r.status_code == 201, r.text
    b_key = await api.new_key(b, "owner")
    ids = {"name": "greet", "version": "1", "label": "production", "user": "olivia", "key_id": created_key["id"],
           "item_id": "q0", "model": "gpt-4o", "run_id": runs[0]["id"], "job_id": job["id"], "message_id": ZERO_UUID,
           "trace_id": trace_id, "score_id": r.json()["id"], "action_id": f"0x{trace_id}",
           "step_id": f"0x{span_id}", "silence_id": silence_id, "notification_id": str(notification["id"])}  # fmt: skip
    secrets = [marker, api_secret, header_secret, created_key["secret"], hook_secret]
    return World(a=a, b=b, b_key=b_key, ids=ids, secrets=secrets, run_ids=[r["id"] for r in runs])


def fill(template: str, project: str, ids: dict[str, str]) -> str:
    """A path of the document with ``project`` and the resource a ``{name}`` means under its collection."""
    names = {"prompts": "greet", "datasets": "qa", "models": "conn", "schedules": "nightly", "rules": "failures",
             "channels": "inbox"}  # fmt: skip

    def value(match: re.Match[str]) -> str:
        param = match.group(1)
        if param == "project":
            return project
        if param == "name":
            collection = template[: match.start()].rstrip("/").rsplit("/", 1)[-1]
            return names[collection]
        return ids[param]

    return re.sub(r"\{(\w+)\}", value, template).removeprefix("/agiflow/api/v1")


def body_for(path: str, verb: str) -> Any:
    """A valid body, so a refusal is about access and not about input; new things get names of their own."""
    fresh = f"b{uuid.uuid4().hex[:8]}"
    if verb == "delete" or (verb == "get"):
        return None
    bodies = [
        (r"/projects$", {"slug": fresh, "name": fresh}),
        (r"/members/[^/]+$", {"role": "viewer"}),
        (r"/keys$", {"name": fresh, "role": "viewer"}),
        (r"/prompts$", {"name": fresh, "template": "hi {{x}}"}),
        (r"/prompts/[^/]+/versions$", {"template": "changed {{x}}"}),
        (r"/labels/[^/]+$", {"version": 1}),
        (r"/render$", {"variables": {"question": "q"}}),
        (r"/datasets$", {"name": fresh, "items": [{"input": {"question": "b"}}]}),
        (r"/datasets/[^/]+/items$", {"items": [{"id": "q0", "input": {"question": "overwritten"}}]}),
        (r"/models$", {"name": fresh, "kind": "openai"}),
        (r"/models/[^/]+$", {"description": "changed"}),
        (
            r"/schedules$",
            {"name": fresh, "interval_seconds": 3600, "paused": True, "job": {"notebook": "builtin:hello"}},
        ),
        (r"/schedules/[^/]+$", {"description": "changed"}),
        (r"/alerts/rules$", {"name": fresh, "metric": "live_workers", "comparison": "<", "threshold": 1}),
        (r"/alerts/rules/[^/]+$", {"description": "changed"}),
        (r"/alerts/silences$", {"ends_at": "2099-01-01T00:00:00Z"}),
        (r"/notifications/channels$", {"name": fresh, "kind": "in_app"}),
        (r"/notifications/channels/[^/]+$", {"enabled": True}),
        (r"/models/[^/]+/test$", {}),
        (r"/prices/[^/]+$", {"input_per_million": 9, "output_per_million": 9}),
        (
            r"/evals/runs$",
            {
                "prompt": {"name": "greet"},
                "dataset": {"name": "qa"},
                "model": {"connection": "echo"},
                "evaluators": [{"type": "exact_match"}],
            },
        ),  # fmt: skip
        (r"/jobs$", {"notebook": "builtin:hello", "parameters": {"name": "b"}}),
        (r"/requeue$", {"group": "agiflow-workers"}),
        (r"/scores$", {"trace_id": "0" * 32, "name": fresh, "value": 1}),
        (r"/from-spans$", {"spans": [{"trace_id": "0" * 32, "span_id": "0" * 16}]}),
        (r"/score$", {"score": 0.5}),
        (r"/steps/[^/]+$", {"output": fresh}),
    ]
    for pattern, body in bodies:
        if re.search(pattern, path):
            return body
    return None  # actions without a body: cancel, retry, rollback, archive, notebook/open


def params_for(path: str, world: World) -> dict[str, str]:
    if path.endswith("/evals/compare"):
        return {"runs": ",".join(world.run_ids)}
    if path.endswith("/diff"):
        return {"from": "1", "to": "1"}
    if path.endswith("/status"):
        return {"project": world.a}
    if path.endswith("/metrics"):  # a fixed range: the default ends now, which differs between snapshots
        return {"start": "2026-01-01T00:00:00Z", "end": "2030-01-01T00:00:00Z", "bucket": "day",
                "measures": "count,errors,latency,tokens,cost,scores"}  # fmt: skip
    return {}


async def call(api: Api, verb: str, template: str, project: str, world: World, **who: Any) -> httpx.Response:
    path = fill(template, project, world.ids)
    params = params_for(path, world)
    body = body_for(path, verb)
    if path.endswith("/import"):  # a streamed upload, not JSON
        return await api.client.request(
            verb.upper(), api.server.api + path, content=b'{"input": {"question": "b"}}\n', params=params,
            headers={**api.headers(**who), "Content-Type": "application/x-ndjson"},
        )  # fmt: skip
    return await api.request(verb.upper(), path, body, params=params, **who)


async def snapshot(api: Api, doc: dict[str, Any], world: World) -> dict[str, Any]:
    """Everything A's owner can read of A."""
    seen: dict[str, Any] = {}
    for template, item in doc["paths"].items():
        if "{project}" not in template or "get" not in item or item["get"]["x-agiflow-websocket"]:
            continue
        r = await call(api, "get", template, world.a, world)
        assert r.status_code == 200, (template, r.status_code, r.text)
        seen[template] = r.text
    return seen


async def test_project_b_owner_key_reaches_nothing_of_project_a(api: Api, world: World) -> None:
    doc = (await api.get("/openapi.json")).json()
    before = await snapshot(api, doc, world)
    b = {"key": world.b_key}
    checked = 0
    for template, item in doc["paths"].items():
        for verb, op in item.items():
            if op["x-agiflow-websocket"]:
                continue
            answers = []
            if "{project}" in template:
                # A's own paths: B's key is refused before anything is looked up.
                r = await call(api, verb, template, world.a, world, **b)
                assert r.status_code in (403, 404), ("A", verb, template, r.status_code, r.text)
                answers.append(r)
                # B's paths naming A's resources: not found (or refused), never A's data.
                r = await call(api, verb, template, world.b, world, **b)
                assert r.status_code != 500, ("B", verb, template, r.text)
                names_a_resource = set(re.findall(r"\{(\w+)\}", template)) & A_SPECIFIC
                if names_a_resource or template.endswith("/evals/compare"):  # refused; not a 422 that hides the lookup
                    assert r.status_code in (400, 403, 404), ("B", verb, template, r.status_code, r.text)
                answers.append(r)
            else:
                r = await call(api, verb, template, world.b, world, **b)
                assert r.status_code != 500, (verb, template, r.text)
                if template.endswith("/status"):
                    assert r.status_code == 403, r.text  # B's key asking for A's figures
                if template.endswith("/projects") and verb == "get":
                    assert world.a not in [p["slug"] for p in r.json()["items"]]
                answers.append(r)
            for answer in answers:
                for secret in world.secrets:
                    assert secret not in answer.text, (verb, template, answer.status_code, answer.text[:300])
            checked += 1
    assert checked > 50

    # The events socket: A's job events are not streamed to B's key.
    url = api.server.url.replace("http://", "ws://") + f"agiflow/api/v1/events?project={world.a}"
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(HTTPRequest(url, headers=api.headers(**b)))
    assert refused.value.code == 403

    assert await snapshot(api, doc, world) == before  # nothing of A changed, its audit log included
