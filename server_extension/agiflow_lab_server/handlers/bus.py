from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from tornado.web import authenticated

from agiflow_lab.bus.admin import DeadLetterEntry, RequeueRequest
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("bus",)


class DeadLetterQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str | None = None
    group: str | None = None
    limit: int = Field(100, ge=1, le=1000)


class DeadLetterList(BaseModel):
    items: list[DeadLetterEntry]


class DeadLettersHandler(AgiflowHandler):
    auth_resource = "agiflow:bus"

    @operation("Dead letters, newest first (server admins; Postgres bus)", query=DeadLetterQuery,
               response=DeadLetterList, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self) -> None:
        q = self.query(DeadLetterQuery)
        self.finish_json(await self.platform.bus_admin.dead_letters(self.actor, q.topic, q.group, q.limit))


class RequeueHandler(AgiflowHandler):
    auth_resource = "agiflow:bus"

    @operation("Deliver a dead letter to its group again, with fresh attempts", body=RequeueRequest, status=204,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, message_id: str) -> None:
        body = self.parse(RequeueRequest)
        await self.platform.bus_admin.requeue(self.actor, message_id, body.group)
        self.finish_json(None, status=204)
