"""Secrets never reach the server log or an error body: Jupyter tokens and project API keys sent in a query
string, and secret-bearing values in a body that fails validation."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.api import Api


def log_since(api: Api, offset: int) -> str:
    return api.server.log_path.read_bytes()[offset:].decode(errors="replace")


async def test_tokens_and_keys_in_query_strings_and_bad_bodies_are_not_logged(api: Api, project: str) -> None:
    key = await api.new_key(project, "owner")
    token = api.server.token
    base = api.server.api
    client: httpx.AsyncClient = api.client
    offset = api.server.log_path.stat().st_size
    answers: list[httpx.Response] = []

    async def call(method: str, path: str, *, json: Any = None, **kw: Any) -> httpx.Response:
        r = await client.request(method, base + path, json=json, **kw)
        # Each call stands alone: Jupyter answers a `?token=` sign-in with a login cookie, which would
        # authenticate the next call (and every later test's on this shared client).
        client.cookies.clear()
        answers.append(r)
        return r

    owner = api.headers()
    # The Jupyter token in the query (Jupyter's own way to sign in); the request is refused and logged.
    r = await call("GET", f"/projects/{project}/audit", params={"token": token, "limit": "many"})
    assert r.status_code in (403, 422), r.text
    r = await call("GET", f"/projects/{project}/audit", params={"token": token, "limit": "many"}, headers=owner)
    assert r.status_code == 422, r.text
    # A project key where Jupyter looks for its token: not a key there, refused, and logged.
    r = await call("GET", f"/projects/{project}/prompts", params={"token": key})
    assert r.status_code in (401, 403), r.text
    # A key in a parameter Jupyter's scrubber does not know by name.
    r = await call("GET", f"/projects/{project}/jobs", params={"notebook": key, "limit": "0"},
                   headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert r.status_code == 422, r.text
    # Keys in body fields that fail validation, with the token in the query as well.
    r = await call("POST", f"/projects/{project}/prompts", params={"token": token}, headers=owner,
                   json={"name": "x", "template": "hi", "type": key})  # fmt: skip
    assert r.status_code == 422, r.text
    r = await call("POST", f"/projects/{project}/models", headers={"Authorization": f"Bearer {key}"},
                   json={"name": "m", "kind": "openai", "api_key": key, "options": {"headers": {"X-Key": key + "\r\n"}}})  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"]["errors"][0]["field"].startswith("options.headers")
    r = await call("PUT", f"/projects/{project}/members/someone", params={"access_token": token}, headers=owner,
                   json={"role": key})  # fmt: skip
    assert r.status_code == 422, r.text
    # The last request is logged before its answer is sent, so every earlier line is in the file by now.
    marker = f"marker{uuid.uuid4().hex}"
    r = await call("GET", f"/projects/{project}/audit", params={"token": token, "limit": marker}, headers=owner)
    assert r.status_code == 422

    log = log_since(api, offset)
    assert marker in log and "token=[secret]" in log  # the requests were logged, with the secrets scrubbed
    secret_part = key.split("_", 2)[2]
    for text in [log, *(a.text for a in answers)]:
        assert token not in text
        assert key not in text and secret_part not in text
