"""The prompt registry over HTTP: versions, labels, render, diff, search, archive, audit."""

from __future__ import annotations

import asyncio

from tests.support.api import Api

TEXT = {
    "name": "greet",
    "template": "Hello {{name}} from {{ place }}!",
    "config": {"model": "gpt-4o", "temperature": 0.2},
}


async def create(api: Api, project: str, body: dict | None = None) -> dict:
    r = await api.post(f"/projects/{project}/prompts", body or TEXT)
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_extracts_variables_and_keeps_parameters(api: Api, project: str) -> None:
    v = await create(api, project, {**TEXT, "commit_message": "first", "labels": ["production"]})
    assert v["version"] == 1
    assert v["variables"] == ["name", "place"]
    assert v["config"] == {"model": "gpt-4o", "temperature": 0.2}
    assert v["created_by"] == "olivia"
    assert v["labels"] == ["production"]


async def test_chat_prompt_renders_messages(api: Api, project: str) -> None:
    body = {
        "name": "support",
        "type": "chat",
        "template": [{"role": "system", "content": "You help {{company}} customers."},
                     {"role": "user", "content": "{{question}}"}],
        "labels": ["production"],
    }  # fmt: skip
    await create(api, project, body)
    r = await api.post(f"/projects/{project}/prompts/support/render",
                       {"variables": {"company": "Acme", "question": "Where is my order?"}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["messages"] == [
        {"role": "system", "content": "You help Acme customers."},
        {"role": "user", "content": "Where is my order?"},
    ]


async def test_template_must_match_type(api: Api, project: str) -> None:
    r = await api.post(f"/projects/{project}/prompts", {"name": "bad", "type": "chat", "template": "text"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_failed"


async def test_duplicate_name_is_a_conflict(api: Api, project: str) -> None:
    await create(api, project)
    r = await api.post(f"/projects/{project}/prompts", TEXT)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["field"] == "name"


async def test_versions_are_numbered_without_gaps_under_concurrency(api: Api, project: str) -> None:
    await create(api, project)
    results = await asyncio.gather(
        *[
            api.post(f"/projects/{project}/prompts/greet/versions", {"template": f"v{i} {{{{name}}}}"})
            for i in range(10)
        ]
    )
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    assert sorted(r.json()["version"] for r in results) == list(range(2, 12))
    r = await api.get(f"/projects/{project}/prompts/greet", params={"label": "latest"})
    assert r.json()["version"] == 11


async def test_label_moves_are_audited_and_reversible(api: Api, project: str) -> None:
    await create(api, project, {**TEXT, "labels": ["production"]})
    await api.post(f"/projects/{project}/prompts/greet/versions", {"template": "Hi {{name}}"})
    base = f"/projects/{project}/prompts/greet"

    r = await api.put(f"{base}/labels/production", {"version": 2})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert (await api.get(base)).json()["version"] == 2  # production is the default label

    history = (await api.get(f"{base}/labels/production/history")).json()["items"]
    assert [(h["from_version"], h["to_version"]) for h in history] == [(1, 2), (None, 1)]

    r = await api.post(f"{base}/labels/production/rollback")
    assert r.status_code == 200 and r.json()["version"] == 1
    assert (await api.get(base)).json()["version"] == 1

    audit = (await api.get(f"/projects/{project}/audit", params={"resource_type": "prompt"})).json()["items"]
    moves = [a for a in audit if a["action"] == "prompt.label.move"]
    assert moves[0]["before"] == {"version": 2} and moves[0]["after"] == {"version": 1}
    assert moves[0]["actor"] == "olivia"


async def test_label_rules(api: Api, project: str) -> None:
    await create(api, project)
    base = f"/projects/{project}/prompts/greet"
    r = await api.put(f"{base}/labels/latest", {"version": 1})
    assert r.status_code == 400 and "automatic" in r.json()["error"]["message"]
    r = await api.put(f"{base}/labels/Bad Label", {"version": 1})
    assert r.status_code in (400, 422)
    r = await api.put(f"{base}/labels/staging", {"version": 9})
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "version"
    r = await api.get(base, params={"label": "staging"})
    assert r.status_code == 404
    r = await api.put(f"{base}/labels/staging", {"version": 1})
    assert r.status_code == 200
    r = await api.delete(f"{base}/labels/staging")
    assert r.status_code == 204
    assert (await api.get(base, params={"label": "staging"})).status_code == 404


async def test_render_names_missing_and_unknown_variables(api: Api, project: str) -> None:
    await create(api, project, {**TEXT, "labels": ["production"]})
    url = f"/projects/{project}/prompts/greet/render"
    r = await api.post(url, {"variables": {"name": "Ann"}})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["missing"] == ["place"]
    r = await api.post(url, {"variables": {"name": "Ann", "place": "Oslo", "mood": "glad"}})
    assert r.status_code == 400
    assert r.json()["error"]["details"]["unknown"] == ["mood"]
    r = await api.post(url, {"variables": {"name": "Ann", "place": "Oslo"}})
    assert r.status_code == 200
    assert r.json()["text"] == "Hello Ann from Oslo!"
    assert r.json()["config"]["model"] == "gpt-4o"


async def test_diff_shows_template_and_parameter_changes(api: Api, project: str) -> None:
    await create(api, project)
    await api.post(f"/projects/{project}/prompts/greet/versions",
                   {"template": "Hello {{name}}!", "config": {"model": "gpt-4o", "temperature": 0.7}})  # fmt: skip
    r = await api.get(f"/projects/{project}/prompts/greet/diff", params={"from": 1, "to": 2})
    assert r.status_code == 200, r.text
    d = r.json()
    assert "-Hello {{name}} from {{ place }}!" in d["template_diff"]
    assert "+Hello {{name}}!" in d["template_diff"]
    assert d["config_changes"] == [{"key": "temperature", "before": 0.2, "after": 0.7}]
    assert d["variables_removed"] == ["place"]


async def test_list_search_and_pagination(api: Api, project: str) -> None:
    for i in range(7):
        await create(api, project, {"name": f"item-{i}", "template": "x", "description": "alpha" if i % 2 else "beta",
                                    "tags": ["even"] if i % 2 == 0 else []})  # fmt: skip
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await api.get(f"/projects/{project}/prompts", params=params)).json()
        seen += [p["name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"item-{i}" for i in range(7)]
    found = (await api.get(f"/projects/{project}/prompts", params={"search": "alph"})).json()["items"]
    assert [p["name"] for p in found] == ["item-1", "item-3", "item-5"]
    tagged = (await api.get(f"/projects/{project}/prompts", params={"tag": "even"})).json()["items"]
    assert len(tagged) == 4
    r = await api.get(f"/projects/{project}/prompts", params={"limit": 0})
    assert r.status_code == 422 and r.json()["error"]["details"]["errors"][0]["field"] == "limit"
    r = await api.get(f"/projects/{project}/prompts", params={"cursor": "!!"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "cursor"


async def test_search_treats_wildcards_literally(api: Api, project: str) -> None:
    await create(api, project, {"name": "pct", "template": "x", "description": "100% sure"})
    await create(api, project, {"name": "other", "template": "x", "description": "1000 sure"})
    found = (await api.get(f"/projects/{project}/prompts", params={"search": "0%"})).json()["items"]
    assert [p["name"] for p in found] == ["pct"]


async def test_archive_hides_from_list_but_still_resolves(api: Api, project: str) -> None:
    await create(api, project, {**TEXT, "labels": ["production"]})
    base = f"/projects/{project}/prompts/greet"
    r = await api.post(f"{base}/archive")
    assert r.status_code == 200 and r.json()["archived"] is True
    assert (await api.get(f"/projects/{project}/prompts")).json()["items"] == []
    listed = (await api.get(f"/projects/{project}/prompts", params={"include_archived": "true"})).json()["items"]
    assert [p["name"] for p in listed] == ["greet"]
    assert (await api.get(base)).status_code == 200
    r = await api.post(f"{base}/versions", {"template": "new"})
    assert r.status_code == 409
    assert (await api.delete(f"{base}/archive")).json()["archived"] is False


async def test_bad_input_never_500s_and_writes_nothing(api: Api, project: str) -> None:
    url = f"/projects/{project}/prompts"
    bad_bodies = [
        None, [], "text", {"name": ""}, {"name": "a b", "template": "x"}, {"name": "ok", "template": 5},
        {"name": "ok", "template": "x", "config": {"temperature": 9}}, {"name": "ok", "template": "x", "labels": ["UP"]},
        {"name": "ok", "template": "x", "surprise": 1}, {"name": "ok", "template": [{"role": "wizard", "content": "x"}]},
        {"name": "ok", "template": "x", "labels": ["latest"]},
    ]  # fmt: skip
    for body in bad_bodies:
        r = await api.post(url, body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)
        error = r.json()["error"]
        assert error["code"] and error["message"], r.text
    r = await api.client.post(api.server.api + url, content=b"{not json", headers=api.headers())
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "body"
    assert (await api.get(url)).json()["items"] == []
    r = await api.get(f"/projects/{project}/prompts/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await api.get(f"/projects/{project}/prompts/greet/versions/abc")
    assert r.status_code in (400, 404)


async def test_a_nul_character_in_a_path_is_a_bad_name_not_a_server_error(api: Api, project: str) -> None:
    r = await api.get(f"/projects/{project}/prompts/bad%00name")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["field"] == "name"
