"""A small async client for the REST API, acting as a named Jupyter user or with an API key."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.servers import JupyterServer


class Api:
    def __init__(self, server: JupyterServer, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client

    def headers(self, user: str | None = None, key: str | None = None, anonymous: bool = False) -> dict[str, str]:
        if anonymous:
            return {}
        if key is not None:
            return {"Authorization": f"Bearer {key}"}
        if user is not None:
            return {"Authorization": f"token user-{user}"}
        return {"Authorization": f"token {self.server.token}"}

    async def request(
        self, method: str, path: str, json: Any = None, *, params: dict[str, Any] | None = None, **who: Any
    ) -> httpx.Response:
        return await self.client.request(
            method, self.server.api + path, json=json, params=params, headers=self.headers(**who)
        )

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, json, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("PUT", path, json, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    async def new_key(self, project: str, role: str) -> str:
        r = await self.post(f"/projects/{project}/keys", {"name": f"{role} key", "role": role})
        assert r.status_code == 201, r.text
        return str(r.json()["secret"])
