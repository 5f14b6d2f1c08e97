"""Operator view of the bus: inspect dead letters and give them another chance.

Dead letters are deployment-wide (a message may belong to no project, and payloads of every project
are mixed), so only a server admin (``ServerAdmins``: the server owner, not whoever owns the default
project, since owners can make anyone an owner) may see or re-queue them; everyone else, API keys
included, is refused. On Kafka they live in ``<topic>.dlq`` topics, read with Kafka's own tools; this
API serves the Postgres bus, where they are rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agiflow_lab.audit import store as audit
from agiflow_lab.authz.admins import ServerAdmins
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import Conflict


class DeadLetterEntry(BaseModel):
    message_id: str
    topic: str
    key: str
    payload: dict[str, Any]
    group: str
    attempts: int
    error: str | None
    created_at: datetime
    failed_at: datetime


class RequeueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: str = Field(min_length=1, description="The consumer group to deliver it to again")


class BusAdmin:
    def __init__(self, db: Database, admins: ServerAdmins, bus_kind: str) -> None:
        self.db = db
        self.admins = admins
        self.bus_kind = bus_kind

    def _check(self, actor: Actor) -> None:
        self.admins.check(actor, "administer the bus (its dead letters hold every project's messages)")
        if self.bus_kind != "postgres":
            raise Conflict(
                f"the {self.bus_kind} bus keeps dead letters in '<topic>.dlq' topics; use its own tools",
                {"bus": self.bus_kind},
            )

    async def dead_letters(
        self, actor: Actor, topic: str | None, group: str | None, limit: int
    ) -> list[DeadLetterEntry]:
        self._check(actor)
        from agiflow_lab.bus.postgres import dead_letters

        return [
            DeadLetterEntry(
                message_id=d.message.id,
                topic=d.message.topic,
                key=d.message.key,
                payload=d.message.payload,
                group=d.group,
                attempts=d.message.attempt,
                error=d.error,
                created_at=d.message.created_at,
                failed_at=d.failed_at,
            )  # fmt: skip
            for d in await dead_letters(self.db, topic, group, limit=limit)
        ]

    async def requeue(self, actor: Actor, message_id: str, group: str) -> None:
        self._check(actor)
        from agiflow_lab.bus.postgres import requeue

        await requeue(self.db, message_id, group)
        async with self.db.connection() as conn:
            await audit.record(
                conn, project_id=None, actor=actor, action="bus.requeue", resource_type="message",
                resource_id=message_id, after={"group": group},
            )  # fmt: skip
