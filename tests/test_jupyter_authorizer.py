"""The Jupyter server's own authorizer is consulted, and awaited, before AGIFlow's roles.

jupyter_server lets ``Authorizer.is_authorized`` be ``async def``; called without ``await`` it returns
a coroutine, which is truthy, so a refusal would silently let every request in.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.support.api import Api
from tests.support.authorizer import REFUSED
from tests.support.servers import JupyterServer, start_jupyter


@pytest.fixture(scope="module")
def guarded(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    server = start_jupyter(
        db_url, tmp_path_factory.mktemp("authorizer"),
        extra_args=["--ServerApp.authorizer_class=tests.support.authorizer.AsyncRefusingAuthorizer",
                    "--AgiflowLab.workers=0"],
    )  # fmt: skip
    yield server
    server.stop()


async def test_an_async_authorizer_that_refuses_is_honoured(guarded: JupyterServer, project: str) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        api = Api(guarded, client)
        # A member of the project by AGIFlow's roles: only the Jupyter authorizer stands in the way.
        assert (await api.put(f"/projects/{project}/members/{REFUSED}", {"role": "editor"})).status_code == 200

        r = await api.get(f"/projects/{project}/prompts", user=REFUSED)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"
        assert "Jupyter server does not allow" in r.json()["error"]["message"]
        r = await api.post(f"/projects/{project}/prompts", {"name": "greet", "template": "Hi"}, user=REFUSED)
        assert r.status_code == 403, r.text
        assert (await api.get("/projects", user=REFUSED)).status_code == 403  # no project in the path either

        url = guarded.url.replace("http://", "ws://") + f"agiflow/api/v1/events?project={project}"
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(HTTPRequest(url, headers=api.headers(user=REFUSED)))
        assert refused.value.code == 403

        # The same awaited authorizer says yes to everyone else.
        assert (await api.get(f"/projects/{project}/prompts")).status_code == 200
        ws = await websocket_connect(HTTPRequest(url, headers=api.headers()))
        ws.close()
