"""The trace read API over spans stored the real way: the OpenTelemetry SDK exports to the receiver, the
supervised worker's span writer stores them, and the API lists and opens them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.support.api import Api
from tests.support.polling import until
from tests.support.traces import export


async def _two_traces(api: Api, project: str) -> dict[str, str]:
    """A good gpt-4o trace and a failed gpt-4o-mini one, both whole in the list; returns their ids by model."""
    key = await api.new_key(project, "editor")
    endpoint = f"{api.server.api}/otel/v1/traces"
    ids = {
        "gpt-4o": await asyncio.to_thread(
            export, endpoint, key, root="answer question", question="What is the capital of France?", answer="Paris"
        ),
        "gpt-4o-mini": await asyncio.to_thread(
            export, endpoint, key, root="summarise", model="gpt-4o-mini", question="Summarise the memo", failed=True
        ),
    }

    async def whole() -> bool:
        items = (await api.get(f"/projects/{project}/traces")).json()["items"]
        return sorted(t["trace_id"] for t in items if t["has_root"] and t["span_count"] == 2) == sorted(ids.values())

    await until(whole, "both traces to be stored whole", timeout=60)
    return ids


async def _list(api: Api, project: str, **params: Any) -> list[dict[str, Any]]:
    r = await api.get(f"/projects/{project}/traces", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_the_list_summarises_filters_and_pages(api: Api, project: str) -> None:
    ids = await _two_traces(api, project)

    by_id = {t["trace_id"]: t for t in await _list(api, project)}
    good = by_id[ids["gpt-4o"]]
    assert (good["name"], good["span_count"], good["tokens_in"], good["tokens_out"]) == (
        "answer question",
        2,
        1000,
        100,
    )
    assert good["models"] == ["gpt-4o"] and good["cost_usd"] > 0 and good["status"] == "ok"
    assert by_id[ids["gpt-4o-mini"]]["status"] == "error"

    assert [t["trace_id"] for t in await _list(api, project, model="gpt-4o-mini")] == [ids["gpt-4o-mini"]]
    assert [t["trace_id"] for t in await _list(api, project, status="error")] == [ids["gpt-4o-mini"]]
    assert [t["trace_id"] for t in await _list(api, project, status="ok")] == [ids["gpt-4o"]]
    assert [t["trace_id"] for t in await _list(api, project, text="capital of FRANCE")] == [ids["gpt-4o"]]
    assert [t["trace_id"] for t in await _list(api, project, text="paris")] == [ids["gpt-4o"]]
    assert await _list(api, project, text="nowhere") == []

    seen, cursor = [], None
    for _ in range(3):
        r = await api.get(f"/projects/{project}/traces", params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        page = r.json()
        seen += [t["trace_id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids.values())


async def test_a_trace_opens_with_its_spans_linked(api: Api, project: str) -> None:
    ids = await _two_traces(api, project)
    r = await api.get(f"/projects/{project}/traces/{ids['gpt-4o']}")
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["trace_id"] == ids["gpt-4o"] and detail["next_cursor"] is None
    by_name = {s["name"]: s for s in detail["spans"]}
    root, call = by_name["answer question"], by_name["chat gpt-4o"]
    assert root["parent_span_id"] is None and call["parent_span_id"] == root["span_id"]
    assert (call["model"], call["tokens_in"], call["tokens_out"]) == ("gpt-4o", 1000, 100)
    assert root["input"] == "What is the capital of France?" and root["start_time"] <= call["start_time"]

    first = (await api.get(f"/projects/{project}/traces/{ids['gpt-4o']}", params={"limit": 1})).json()
    rest = (
        await api.get(f"/projects/{project}/traces/{ids['gpt-4o']}", params={"cursor": first["next_cursor"]})
    ).json()
    assert [s["span_id"] for s in first["spans"] + rest["spans"]] == [s["span_id"] for s in detail["spans"]]


async def test_an_unknown_trace_is_404_and_a_malformed_id_400(api: Api, project: str) -> None:
    r = await api.get(f"/projects/{project}/traces/{uuid.uuid4().hex}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for bad in ("xyz", "A" * 32, "0" * 31, "0" * 33):
        r = await api.get(f"/projects/{project}/traces/{bad}")
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["code"] == "invalid_input" and "trace_id" in r.text


async def test_a_viewer_key_reads_and_another_projects_key_does_not(api: Api, project: str) -> None:
    ids = await _two_traces(api, project)
    viewer = await api.new_key(project, "viewer")
    assert len((await api.get(f"/projects/{project}/traces", key=viewer)).json()["items"]) == 2
    assert (await api.get(f"/projects/{project}/traces/{ids['gpt-4o']}", key=viewer)).status_code == 200

    other = f"o-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/projects", {"slug": other, "name": other})).status_code == 201
    foreign = await api.new_key(other, "owner")
    r = await api.get(f"/projects/{project}/traces", key=foreign)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert (await api.get(f"/projects/{project}/traces/{ids['gpt-4o']}", key=foreign)).status_code == 403


async def test_sessions_users_and_metrics_sum_the_stored_traces(api: Api, project: str) -> None:
    await _two_traces(api, project)  # both in session s-1; no user ids

    sessions = (await api.get(f"/projects/{project}/sessions")).json()["items"]
    assert [(s["id"], s["trace_count"], s["error_count"], s["tokens_in"]) for s in sessions] == [("s-1", 2, 1, 2000)]
    assert (await api.get(f"/projects/{project}/users")).json() == {"items": [], "next_cursor": None}

    r = await api.get(f"/projects/{project}/metrics", params={"bucket": "day", "group_by": "model"})
    assert r.status_code == 200, r.text
    body = r.json()
    by_model: dict[Any, dict[str, Any]] = {}
    for p in body["points"]:
        by_model.setdefault(p["group"]["model"], {"count": 0, "errors": 0, "tokens_in": 0})
        for k in ("count", "errors", "tokens_in"):
            by_model[p["group"]["model"]][k] += p[k]
    # Two spans per trace: the root has no model (its group is null), the call has one.
    assert by_model["gpt-4o"] == {"count": 1, "errors": 0, "tokens_in": 1000}
    assert by_model["gpt-4o-mini"] == {"count": 1, "errors": 1, "tokens_in": 1000}
    assert by_model[None]["count"] == 2
    assert all(p["latency_p95_ms"] is not None for p in body["points"])

    only = (await api.get(f"/projects/{project}/metrics", params={"measures": "count"})).json()["points"]
    assert sum(p["count"] for p in only) == 4 and all(p["latency_p50_ms"] is None for p in only)


async def test_metrics_refuse_what_they_cannot_answer(api: Api, project: str) -> None:
    for params, field in (
        ({"measures": "count,vibes"}, "measures"),
        ({"measures": ""}, "measures"),
        ({"bucket": "week"}, "bucket"),
        ({"bucket": "minute", "start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "bucket"),
        ({"start": "2026-03-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "2026-03-01T00:00:00"}, "start"),  # no time zone
        ({"group_by": "mood"}, "group_by"),
    ):
        r = await api.get(f"/projects/{project}/metrics", params=params)
        assert r.status_code in (400, 422), (params, r.text)  # 422: a value of the wrong type or set
        assert field in r.text, (params, r.text)
    r = await api.get(f"/projects/{project}/sessions", params={"cursor": "AAAA"})
    assert r.status_code == 400 and "cursor" in r.text


async def test_spans_become_dataset_items_once(api: Api, project: str) -> None:
    ids = await _two_traces(api, project)
    spans = (await api.get(f"/projects/{project}/traces/{ids['gpt-4o']}")).json()["spans"]
    root = next(s for s in spans if s["parent_span_id"] is None)
    assert (await api.post(f"/projects/{project}/datasets", {"name": "from-prod"})).status_code == 201
    body = {"spans": [{"trace_id": ids["gpt-4o"], "span_id": root["span_id"]}]}

    r = await api.post(f"/projects/{project}/datasets/from-prod/from-spans", body)
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["item_count"]) == (1, 1)
    r = await api.post(f"/projects/{project}/datasets/from-prod/from-spans", body)  # again: the same item
    assert (r.json()["version"], r.json()["item_count"]) == (2, 1)
    (item,) = (await api.get(f"/projects/{project}/datasets/from-prod/items")).json()["items"]
    assert item["id"] == f"{ids['gpt-4o']}:{root['span_id']}"
    assert (item["input"], item["expected"]) == ({"input": "What is the capital of France?"}, "Paris")
    assert item["metadata"]["trace_id"] == ids["gpt-4o"] and item["metadata"]["span_name"] == "answer question"

    unknown = {"trace_id": ids["gpt-4o"], "span_id": "0" * 16}
    r = await api.post(f"/projects/{project}/datasets/from-prod/from-spans", {"spans": [*body["spans"], unknown]})
    assert r.status_code == 404 and r.json()["error"]["details"]["missing"] == [unknown]
    assert (await api.get(f"/projects/{project}/datasets/from-prod")).json()["latest_version"] == 2  # untouched
    for bad in ({"spans": []}, {"spans": [{"trace_id": "x", "span_id": root["span_id"]}]}, {}):
        r = await api.post(f"/projects/{project}/datasets/from-prod/from-spans", bad)
        assert r.status_code in (400, 422), r.text
    viewer = await api.new_key(project, "viewer")
    assert (await api.post(f"/projects/{project}/datasets/from-prod/from-spans", body, key=viewer)).status_code == 403


async def test_an_owner_sets_the_projects_trace_retention(api: Api, project: str) -> None:
    r = await api.request("PATCH", f"/projects/{project}", {"trace_retention_days": 14})
    assert r.status_code == 200 and r.json()["trace_retention_days"] == 14, r.text
    assert (await api.get(f"/projects/{project}")).json()["trace_retention_days"] == 14
    for bad in ({"trace_retention_days": 0}, {"trace_retention_days": 4000}, {"trace_retention_days": "7"},
                {"name": None}, {"slug": "renamed"}):  # fmt: skip
        r = await api.request("PATCH", f"/projects/{project}", bad)
        assert r.status_code in (400, 422), (bad, r.text)
    r = await api.request("PATCH", f"/projects/{project}", {"trace_retention_days": None})
    assert r.json()["trace_retention_days"] is None and r.json()["name"] == project
    editor = await api.new_key(project, "editor")
    assert (await api.request("PATCH", f"/projects/{project}", {"name": "x"}, key=editor)).status_code == 403
    audit = (await api.get(f"/projects/{project}/audit")).json()["items"]
    assert any(e["action"] == "project.update" for e in audit)
