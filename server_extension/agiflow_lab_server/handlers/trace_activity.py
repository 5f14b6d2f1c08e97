"""``/projects/{project}/traces/live``: a WebSocket that says "new spans" so a view refetches.

It carries no spans (the query API is the one way to read them, filters and access included): each
message is ``{"type": "spans", "at": <server time>}``, at most one a second however busy the project.
A client that reconnects missed nothing it cannot get by reading once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.websocket import WebSocketMixin
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from agiflow_lab_server.base import AgiflowHandler
from agiflow_lab_server.routing import operation


class TraceActivitySocket(WebSocketMixin, WebSocketHandler, AgiflowHandler):  # type: ignore[misc]
    auth_resource = "agiflow:traces"
    _stream_request_body = False  # an upgrade has no body to stream, and tornado's upgrade path expects none

    @operation("WebSocket that sends {type: 'spans', at} (at most once a second) when the project stores new "
               "spans, so a trace list or dashboard knows to read again", tags=("traces",), websocket=True)  # fmt: skip
    @ws_authenticated
    async def get(self, project: str, *args: Any, **kwargs: Any) -> None:
        await self.check_jupyter_authorizer("read")
        self.wakeups: AsyncIterator[None] = await self.platform.traces.follow(self.actor, project)
        await super().get(project, *args, **kwargs)

    get.__agiflow_authorized__ = True  # type: ignore[attr-defined]  # checked by TraceService.follow

    async def open(self, *args: Any, **kwargs: Any) -> None:
        self.sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        with contextlib.suppress(WebSocketClosedError):
            async for _ in self.wakeups:
                await self.write_message({"type": "spans", "at": datetime.now(UTC).isoformat()})

    def on_message(self, message: str | bytes) -> None:
        """Clients only listen; anything they send is ignored."""

    def on_close(self) -> None:
        if hasattr(self, "sender"):
            self.sender.cancel()  # raised inside the follow generator, whose ``finally`` unregisters it
