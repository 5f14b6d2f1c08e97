"""The traces' live socket: a view following a project hears that spans were stored (and only its own
project's), then reads them through the query API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.support.api import Api
from tests.support.traces import export


async def follow(api: Api, project: str, **who: Any) -> WebSocketClientConnection:
    url = api.server.url.replace("http://", "ws://") + f"agiflow/api/v1/projects/{project}/traces/live"
    return await websocket_connect(HTTPRequest(url, headers=api.headers(**who)))


async def test_a_follower_hears_of_stored_spans_once_they_are_readable(api: Api, project: str) -> None:
    other = (await api.post("/projects", {"slug": f"{project}-other", "name": "other"})).json()["slug"]
    viewer = await api.new_key(project, "viewer")
    mine, theirs = await follow(api, project, key=viewer), await follow(api, other)
    endpoint = f"{api.server.api}/otel/v1/traces"
    trace_id = await asyncio.to_thread(export, endpoint, await api.new_key(project, "editor"), root="live one")

    async with asyncio.timeout(60):
        while True:
            message = await mine.read_message()
            assert message is not None, "the server closed the socket"
            assert json.loads(message)["type"] == "spans"
            listed = (await api.get(f"/projects/{project}/traces", key=viewer)).json()["items"]
            if any(t["trace_id"] == trace_id and t["span_count"] == 2 for t in listed):
                break  # a wake-up comes after a commit, so the last one finds the whole trace

    # The other project's follower was not woken by them (it would have been at the same moment) ...
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(theirs.read_message(), timeout=1)
    # ... but is by its own project's spans.
    await asyncio.to_thread(export, endpoint, await api.new_key(other, "editor"), root="elsewhere")
    async with asyncio.timeout(60):
        first = await theirs.read_message()
    assert first is not None and json.loads(first)["type"] == "spans"
    mine.close()
    theirs.close()


async def test_following_needs_read_access_to_the_project(api: Api, project: str) -> None:
    with pytest.raises(HTTPClientError) as anonymous:
        await follow(api, project, anonymous=True)
    assert anonymous.value.code == 401
    with pytest.raises(HTTPClientError) as stranger:
        await follow(api, project, user="stranger")
    assert stranger.value.code == 403
    with pytest.raises(HTTPClientError) as missing:
        await follow(api, "no-such-project")
    assert missing.value.code in (403, 404)
