"""``/projects/{project}/schedules``: jobs and evaluation runs on a cron expression or an interval.

The rules (what a valid schedule is, firing each tick once) are ``ScheduleService``'s; a schedule is named
in its project like a prompt or a dataset.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from jupyter_core.utils import ensure_async
from pydantic import BaseModel, ConfigDict, Field
from tornado.web import authenticated

from agiflow_lab.core.paging import Page
from agiflow_lab.errors import InvalidInput
from agiflow_lab.schedules.models import Firing, FiringOutcome, Schedule, ScheduleCreate, ScheduleUpdate
from agiflow_lab.schedules.service import ScheduleService
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.handlers.jobs import Contents
from agiflow_lab_server.routing import operation

TAGS = ("schedules",)


class ScheduleQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paused: bool | None = None
    target: Literal["job", "eval"] | None = None
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class FiringQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: FiringOutcome | None = None
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class ScheduleBase(AgiflowHandler):
    auth_resource = "agiflow:schedules"

    @property
    def schedules(self) -> ScheduleService:
        return self.platform.schedules

    async def _snapshot(self, path: str) -> dict[str, Any]:
        """A contents notebook, read from this server's files as a job submission reads it, and kept."""
        try:
            contents: Contents = self.contents_manager
            model = await ensure_async(contents.get(path, content=True, type="notebook"))
        except Exception as exc:  # the contents manager raises tornado HTTPErrors of its own
            raise InvalidInput(f"notebook {path!r} cannot be read: {exc}", {"field": "job.notebook"}) from None
        content: dict[str, Any] = json.loads(json.dumps(model["content"]))
        return content


class SchedulesHandler(ScheduleBase):
    @operation("List schedules, newest first, with their next fire times", query=ScheduleQuery,
               response=Page[Schedule], tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(ScheduleQuery)
        self.finish_json(await self.schedules.search(project, paused=q.paused, target=q.target, cursor=q.cursor,
                                                     limit=q.limit))  # fmt: skip

    @operation("Create a schedule: a cron expression (with a time zone) or an interval, firing a notebook job or "
               "an evaluation run", body=ScheduleCreate, response=Schedule, status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        schedule = await self.schedules.create(self.actor, project, self.parse(ScheduleCreate), self._snapshot)
        self.finish_json(schedule, status=201)


class ScheduleHandler(ScheduleBase):
    @operation("Get a schedule, its next fire times and its last firing", response=Schedule, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        self.finish_json(await self.schedules.get(project, name))

    @operation("Edit a schedule (only the fields sent change)", body=ScheduleUpdate, response=Schedule, tags=TAGS)
    @authenticated
    @authorized
    async def patch(self, project: str, name: str) -> None:
        body = self.parse(ScheduleUpdate)
        self.finish_json(await self.schedules.update(self.actor, project, name, body, self._snapshot))

    @operation("Delete a schedule and its firing history (the jobs and runs it started stay)", status=204,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def delete(self, project: str, name: str) -> None:
        await self.schedules.delete(self.actor, project, name)
        self.finish_json(None, status=204)


class SchedulePauseHandler(ScheduleBase):
    @operation("Pause a schedule: no tick fires until it is resumed", response=Schedule, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        self.finish_json(await self.schedules.pause(self.actor, project, name))


class ScheduleResumeHandler(ScheduleBase):
    @operation("Resume a schedule from its next tick (ticks while paused are not fired)", response=Schedule,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        self.finish_json(await self.schedules.resume(self.actor, project, name))


class ScheduleRunHandler(ScheduleBase):
    @operation("Run the schedule's target now, whatever its overlap policy", response=Firing, status=201, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        self.finish_json(await self.schedules.run_now(self.actor, project, name), status=201)


class FiringsHandler(ScheduleBase):
    @operation("A schedule's firings, newest first: the job or run each started, or why it did not",
               query=FiringQuery, response=Page[Firing], tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        q = self.query(FiringQuery)
        self.finish_json(await self.schedules.firings(project, name, outcome=q.outcome, cursor=q.cursor,
                                                      limit=q.limit))  # fmt: skip
