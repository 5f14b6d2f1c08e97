"""``/events``: a WebSocket of one project's job events (state changes, progress, log lines).

A client that reconnects passes ``after=<last event id it saw>`` and first receives everything it
missed (read from the event table), then live events; ids only ever grow, so it can deduplicate.
``after=latest`` starts from the project's newest event: a view that loaded its state over REST
follows what happens next without replaying the project's whole history.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.websocket import WebSocketMixin
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from agiflow_lab.errors import InvalidInput
from agiflow_lab_server.base import AgiflowHandler
from agiflow_lab_server.routing import operation

REPLAY_PAGE = 1000
LATEST = "latest"


class EventsSocket(WebSocketMixin, WebSocketHandler, AgiflowHandler):  # type: ignore[misc]
    auth_resource = "agiflow:jobs"
    _stream_request_body = False  # an upgrade has no body to stream, and tornado's upgrade path expects none

    @operation("WebSocket of a project's job events; query: project, after (an event id to resume after, "
               "default 0: the whole history; `latest`: only events newer than the project's newest now)",
               tags=("jobs",), websocket=True)  # fmt: skip
    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        project = self.get_query_argument("project", "")
        if not project:
            raise InvalidInput("give the project to follow: ?project=<slug>", {"field": "project"})
        after = self.get_query_argument("after", "0")
        self.after: int | None = None if after == LATEST else self.path_int("after", after)
        await self.check_jupyter_authorizer("read")
        self.platform.authz.check(self.actor, project, self.auth_resource, "read")
        self.project = project
        await super().get(*args, **kwargs)

    get.__agiflow_authorized__ = True  # type: ignore[attr-defined]  # checked inline: the project is a query arg

    async def open(self, *args: Any, **kwargs: Any) -> None:
        backend = self.settings["agiflow"].backend
        self.subscription = backend.hub.subscribe({self.project})
        self.sender = asyncio.create_task(self._send_events())

    async def _send_events(self) -> None:
        jobs = self.platform.jobs
        try:
            # Read after subscribing (open), so nothing newer than the starting point is missed. The table
            # is read only up to the hub's mark: a row above it may have an id below one that is not
            # visible yet, and the hub hands everything above the mark over in id order (see EventCursor).
            mark = self.settings["agiflow"].backend.hub.delivered_through
            last = min(await jobs.latest_event_id(self.project), mark) if self.after is None else self.after
            while last < mark:  # catch up from the table
                events = [e for e in await jobs.project_events(self.project, after=last, limit=REPLAY_PAGE)
                          if e.id <= mark]  # fmt: skip
                for event in events:
                    await self._send(event.model_dump(mode="json"))
                    last = event.id
                if len(events) < REPLAY_PAGE:
                    break
            last = max(last, mark)
            while True:  # then live, skipping what the catch-up already sent
                event = await self.subscription.queue.get()
                if event is None:
                    self.close(4000, "too far behind; reconnect with after=<last id>")
                    return
                if event.id > last:
                    await self._send(event.model_dump(mode="json"))
                    last = event.id
        except WebSocketClosedError:
            pass

    async def _send(self, event: dict[str, Any]) -> None:
        payload = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in event.items()}
        await self.write_message(payload)

    def on_message(self, message: str | bytes) -> None:
        """Clients only listen; anything they send is ignored."""

    def on_close(self) -> None:
        backend = self.settings["agiflow"].backend
        if hasattr(self, "subscription"):
            backend.hub.unsubscribe(self.subscription)
        if hasattr(self, "sender"):
            self.sender.cancel()
