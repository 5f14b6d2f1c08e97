"""``/projects/{project}/notifications``: channels (in-app, webhook, e-mail), in-app notifications per user.

Deliveries are ``NotificationService``'s and the notifier's (``agiflow_lab.notifications.delivery``); the live
socket says "new notification" and carries none (the list is the one way to read them), like the traces one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.websocket import WebSocketMixin
from pydantic import BaseModel, ConfigDict, Field
from tornado.web import authenticated
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from agiflow_lab.authz.policy import READ
from agiflow_lab.core.paging import Page
from agiflow_lab.notifications.models import (
    Channel,
    ChannelCreate,
    ChannelCreated,
    ChannelUpdate,
    Notification,
    TestSent,
    Unread,
)
from agiflow_lab.notifications.service import NotificationService
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("notifications",)


class NotificationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unread: bool = Field(False, description="Only those the caller has not read")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class ChannelList(BaseModel):
    items: list[Channel]


class Marked(BaseModel):
    marked: int = Field(description="How many were unread for the caller")


class NotificationBase(AgiflowHandler):
    auth_resource = "agiflow:notifications"

    @property
    def notifications(self) -> NotificationService:
        return self.platform.notifications


class ChannelsHandler(NotificationBase):
    @operation("List the project's notification channels (secrets are never shown)", response=ChannelList,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.notifications.channels(project))

    @operation("Create a channel: in_app, webhook (its signing secret is in this answer only) or email",
               body=ChannelCreate, response=ChannelCreated, status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        body = self.parse(ChannelCreate)
        self.finish_json(await self.notifications.create_channel(self.actor, project, body), status=201)


class ChannelHandler(NotificationBase):
    @operation("Get a notification channel", response=Channel, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        self.finish_json(await self.notifications.channel(project, name))

    @operation("Edit a channel: enable or disable it, replace its settings, or rotate a webhook's secret (the new "
               "one is in this answer only)", body=ChannelUpdate, response=ChannelCreated, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def patch(self, project: str, name: str) -> None:
        body = self.parse(ChannelUpdate)
        self.finish_json(await self.notifications.update_channel(self.actor, project, name, body))

    @operation("Delete a notification channel", status=204, tags=TAGS)
    @authenticated
    @authorized
    async def delete(self, project: str, name: str) -> None:
        await self.notifications.delete_channel(self.actor, project, name)
        self.finish_json(None, status=204)


class ChannelTestHandler(NotificationBase):
    @operation("Send a test notification through this channel (on the bus, with retries)", response=TestSent,
               status=202, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        message_id = await self.notifications.test(self.actor, project, name)
        self.finish_json(TestSent(message_id=message_id), status=202)


class NotificationsHandler(NotificationBase):
    @operation("The project's in-app notifications, newest first, with the caller's read state",
               query=NotificationQuery, response=Page[Notification], tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(NotificationQuery)
        self.finish_json(await self.notifications.list(self.actor, project, unread=q.unread, cursor=q.cursor,
                                                       limit=q.limit))  # fmt: skip


class UnreadHandler(NotificationBase):
    @operation("How many in-app notifications the caller has not read", response=Unread, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(Unread(unread=await self.notifications.unread(self.actor, project)))


class ReadAllHandler(NotificationBase):
    auth_actions = {"POST": READ}  # the caller's own read state: anyone who may read them

    @operation("Mark every in-app notification of the project read, for the caller", response=Marked, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        self.finish_json(Marked(marked=await self.notifications.mark_read(self.actor, project, None)))


class ReadHandler(NotificationBase):
    auth_actions = {"POST": READ}  # the caller's own read state: anyone who may read them

    @operation("Mark an in-app notification read, for the caller only", response=Marked, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str, notification_id: str) -> None:
        number = self.path_int("notification_id", notification_id)
        self.finish_json(Marked(marked=await self.notifications.mark_read(self.actor, project, number)))


class NotificationActivitySocket(WebSocketMixin, WebSocketHandler, AgiflowHandler):  # type: ignore[misc]
    auth_resource = "agiflow:notifications"
    _stream_request_body = False  # an upgrade has no body to stream, and tornado's upgrade path expects none

    @operation("WebSocket that sends {type: 'notification', at} when the project gets an in-app notification, "
               "so a notification list knows to read again", tags=TAGS, websocket=True)  # fmt: skip
    @ws_authenticated
    async def get(self, project: str, *args: Any, **kwargs: Any) -> None:
        await self.check_jupyter_authorizer("read")
        self.wakeups: AsyncIterator[None] = await self.platform.notifications.follow(self.actor, project)
        await super().get(project, *args, **kwargs)

    get.__agiflow_authorized__ = True  # type: ignore[attr-defined]  # checked by NotificationService.follow

    async def open(self, *args: Any, **kwargs: Any) -> None:
        self.sender = asyncio.create_task(self._send())

    async def _send(self) -> None:
        with contextlib.suppress(WebSocketClosedError):
            async for _ in self.wakeups:
                await self.write_message({"type": "notification", "at": datetime.now(UTC).isoformat()})

    def on_message(self, message: str | bytes) -> None:
        """Clients only listen; anything they send is ignored."""

    def on_close(self) -> None:
        if hasattr(self, "sender"):
            self.sender.cancel()
