"""Scores on stored traces, and agiflow-sdk's two PATCH calls, over traces exported the real way."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.support.api import Api
from tests.support.polling import until
from tests.support.traces import export


async def _trace(api: Api, project: str, key: str, **kw: Any) -> str:
    trace_id = await asyncio.to_thread(export, f"{api.server.api}/otel/v1/traces", key, **kw)

    async def stored() -> bool:
        r = await api.get(f"/projects/{project}/traces/{trace_id}")
        return r.status_code == 200 and len(r.json()["spans"]) == 2

    await until(stored, "the trace to be stored", timeout=60)
    return trace_id


async def test_scores_of_each_type_list_filter_and_delete(api: Api, project: str) -> None:
    key = await api.new_key(project, "editor")
    good, bad = await _trace(api, project, key), await _trace(api, project, key, failed=True)
    spans = (await api.get(f"/projects/{project}/traces/{good}")).json()["spans"]
    call = next(s for s in spans if s["parent_span_id"] is not None)

    made = []
    for body in (
        {"trace_id": good, "name": "helpfulness", "value": 0.9, "comment": "clear"},
        {"trace_id": good, "span_id": call["span_id"], "name": "tone", "value": "friendly"},
        {"trace_id": good, "name": "correct", "value": True},
        {"trace_id": bad, "name": "helpfulness", "value": 0.2},
    ):
        r = await api.post(f"/projects/{project}/scores", body)
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert [(s["data_type"], s["value"], s["source"]) for s in made[:3]] == [
        ("numeric", 0.9, "human"), ("categorical", "friendly", "human"), ("boolean", True, "human"),
    ]  # fmt: skip
    by_key = await api.post(f"/projects/{project}/scores", {"trace_id": bad, "name": "correct", "value": False},
                            key=key)  # fmt: skip
    assert by_key.status_code == 201 and by_key.json()["source"] == "api"

    detail = (await api.get(f"/projects/{project}/traces/{good}")).json()
    assert sorted(s["name"] for s in detail["scores"]) == ["correct", "helpfulness", "tone"]
    listed = (await api.get(f"/projects/{project}/scores", params={"trace_id": good, "name": "tone"})).json()
    assert [(s["span_id"], s["value"]) for s in listed["items"]] == [(call["span_id"], "friendly")]

    async def traces(**params: Any) -> list[str]:
        r = await api.get(f"/projects/{project}/traces", params=params)
        assert r.status_code == 200, r.text
        return [t["trace_id"] for t in r.json()["items"]]

    assert sorted(await traces(score_name="helpfulness")) == sorted([good, bad])
    assert await traces(score_name="helpfulness", score_min=0.5) == [good]
    assert await traces(score_name="helpfulness", score_max=0.5) == [bad]
    assert await traces(score_name="correct", score_min=1) == [good]  # booleans are 0/1
    r = await api.get(f"/projects/{project}/traces", params={"score_min": 0.5})
    assert r.status_code == 400 and "score_name" in r.text

    means = (await api.get(f"/projects/{project}/metrics", params={"measures": "scores", "bucket": "day"})).json()
    (point,) = means["points"]
    assert point["score_means"]["helpfulness"] == 0.55 and point["score_means"]["correct"] == 0.5
    assert "tone" not in point["score_means"] and point["count"] is None
    r = await api.get(f"/projects/{project}/metrics", params={"measures": "scores", "group_by": "model"})
    assert r.status_code == 400 and "measures" in r.text

    assert (await api.delete(f"/projects/{project}/scores/{made[0]['id']}")).status_code == 204
    assert (await api.delete(f"/projects/{project}/scores/{made[0]['id']}")).status_code == 404
    assert (await api.delete(f"/projects/{project}/scores/not-a-uuid")).status_code == 400
    assert await traces(score_name="helpfulness") == [bad]


async def test_bad_scores_are_refused_naming_the_field(api: Api, project: str) -> None:
    trace = uuid.uuid4().hex
    for body, field in (
        ({"trace_id": "0x" + trace, "name": "x", "value": 1}, "trace_id"),
        ({"trace_id": trace.upper(), "name": "x", "value": 1}, "trace_id"),
        ({"trace_id": trace, "span_id": "00", "name": "x", "value": 1}, "span_id"),
        ({"trace_id": trace, "name": "", "value": 1}, "name"),
        ({"trace_id": trace, "name": "a\nb", "value": 1}, "name"),
        ({"trace_id": trace, "name": "x", "value": None}, "value"),
        ({"trace_id": trace, "name": "x", "value": [1]}, "value"),
        ({"trace_id": trace, "name": "x", "value": "y" * 501}, "value"),
        ({"trace_id": trace, "name": "x", "value": 1, "extra": 1}, "extra"),
    ):
        r = await api.post(f"/projects/{project}/scores", body)
        assert r.status_code in (400, 422), (body, r.text)
        assert field in r.text, (body, r.text)
    r = await api.client.post(
        f"{api.server.api}/projects/{project}/scores", content=b'{"trace_id": "' + trace.encode() + b'", '
        b'"name": "x", "value": NaN}', headers={**api.headers(), "Content-Type": "application/json"},
    )  # fmt: skip
    assert r.status_code in (400, 422) and "value" in r.text, r.text
    viewer = await api.new_key(project, "viewer")
    r = await api.post(f"/projects/{project}/scores", {"trace_id": trace, "name": "x", "value": 1}, key=viewer)
    assert r.status_code == 403
    assert (await api.get(f"/projects/{project}/scores", key=viewer)).status_code == 200


async def test_agiflow_sdk_scores_and_step_updates_by_id_and_by_alias(api: Api, project: str) -> None:
    """agiflow-sdk's report_score/update_span name a trace and a span by their 0x ids or by the aliases
    associate_trace() put on them; a score may arrive before its trace is stored."""
    key = await api.new_key(project, "editor")
    otel = f"{api.server.api}/otel/v1/agiflow"
    auth = {"Authorization": f"Bearer {key}"}

    alias = f"conversation-{uuid.uuid4().hex[:6]}"
    r = await api.client.patch(f"{otel}/actions/{alias}/score", json={"score": 0.25}, headers=auth)
    assert r.status_code == 200, r.text
    assert (r.json()["trace_id"], r.json()["trace_alias"]) == (None, alias)
    trace = await _trace(api, project, key, root_attributes={
        "agiflow.association.properties.trace_alias": alias, "agiflow.association.properties.span_alias": "root",
    })  # fmt: skip
    spans = (await api.get(f"/projects/{project}/traces/{trace}")).json()["spans"]
    call = next(s for s in spans if s["parent_span_id"] is not None)

    for _ in range(2):  # a second report replaces the first
        r = await api.client.patch(f"{otel}/actions/0x{trace}/score", json={"score": 0.75}, headers=auth)
        assert r.status_code == 200, r.text
    r = await api.client.patch(f"{otel}/steps/0x{call['span_id']}", json={"output": "rewritten"}, headers=auth)
    assert r.status_code == 200, r.text
    r = await api.client.patch(f"{otel}/steps/root", json={"reviewed": True}, headers=auth)
    assert r.status_code == 200, r.text

    detail = (await api.get(f"/projects/{project}/traces/{trace}")).json()
    assert sorted((s["trace_id"], s["value"], s["source"]) for s in detail["scores"]) == [
        (trace, 0.25, "api"), (trace, 0.75, "api"),
    ]  # fmt: skip  # the alias's score is bound to the trace once the trace is read
    by_id = {s["span_id"]: s for s in detail["spans"]}
    assert by_id[call["span_id"]]["updates"] == [{"output": "rewritten"}]
    root = next(s for s in detail["spans"] if s["parent_span_id"] is None)
    assert by_id[root["span_id"]]["updates"] == [{"reviewed": True}]

    for path, body in ((f"actions/0x{trace}/score", {"score": "high"}), (f"actions/0x{trace}/score", {}),
                       (f"steps/0x{call['span_id']}", [1, 2]), (f"actions/{'a' * 201}/score", {"score": 1})):  # fmt: skip
        r = await api.client.patch(f"{otel}/{path}", json=body, headers=auth)
        assert r.status_code in (400, 422), (path, body, r.text)
    viewer = await api.new_key(project, "viewer")
    r = await api.client.patch(f"{otel}/actions/0x{trace}/score", json={"score": 1},
                               headers={"Authorization": f"Bearer {viewer}"})  # fmt: skip
    assert r.status_code == 403
