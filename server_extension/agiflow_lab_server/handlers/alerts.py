"""``/projects/{project}/alerts``: rules on project metrics, their incidents, and silences.

The rules (what a valid rule is, evaluating it into incidents) are ``AlertService``'s; a rule is named in its
project like a schedule.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from tornado.web import authenticated

from agiflow_lab.alerts.models import Incident, Rule, RuleCreate, RuleUpdate, Silence, SilenceCreate
from agiflow_lab.alerts.service import AlertService
from agiflow_lab.core.paging import Page
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("alerts",)


class IncidentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: str | None = Field(None, max_length=128, description="Only this rule's incidents")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class RuleList(BaseModel):
    items: list[Rule]


class SilenceList(BaseModel):
    items: list[Silence]


class AlertBase(AgiflowHandler):
    auth_resource = "agiflow:alerts"

    @property
    def alerts(self) -> AlertService:
        return self.platform.alerts


class RulesHandler(AlertBase):
    @operation("List the project's alert rules with their state", response=RuleList, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.alerts.rules(project))

    @operation("Create an alert rule: a metric over a window against a threshold, for a duration",
               body=RuleCreate, response=Rule, status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        self.finish_json(await self.alerts.create_rule(self.actor, project, self.parse(RuleCreate)), status=201)


class RuleHandler(AlertBase):
    @operation("Get an alert rule and its state", response=Rule, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        self.finish_json(await self.alerts.rule(project, name))

    @operation("Edit an alert rule (only the fields sent change)", body=RuleUpdate, response=Rule, tags=TAGS)
    @authenticated
    @authorized
    async def patch(self, project: str, name: str) -> None:
        self.finish_json(await self.alerts.update_rule(self.actor, project, name, self.parse(RuleUpdate)))

    @operation("Delete an alert rule and its incidents", status=204, tags=TAGS)
    @authenticated
    @authorized
    async def delete(self, project: str, name: str) -> None:
        await self.alerts.delete_rule(self.actor, project, name)
        self.finish_json(None, status=204)


class IncidentsHandler(AlertBase):
    @operation("Alert history: incidents, newest first, with start, end and values", query=IncidentQuery,
               response=Page[Incident], tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(IncidentQuery)
        self.finish_json(await self.alerts.incidents(project, rule=q.rule, cursor=q.cursor, limit=q.limit))


class SilencesHandler(AlertBase):
    @operation("List silences (active and ended)", response=SilenceList, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.alerts.silences(project))

    @operation("Silence one rule, or every rule of the project, until an end time", body=SilenceCreate,
               response=Silence, status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        self.finish_json(await self.alerts.create_silence(self.actor, project, self.parse(SilenceCreate)), status=201)


class SilenceHandler(AlertBase):
    @operation("End a silence now (delete it)", status=204, tags=TAGS)
    @authenticated
    @authorized
    async def delete(self, project: str, silence_id: str) -> None:
        await self.alerts.delete_silence(self.actor, project, silence_id)
        self.finish_json(None, status=204)
