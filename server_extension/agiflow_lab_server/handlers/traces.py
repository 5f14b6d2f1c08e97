"""``/projects/{project}/traces``: reading stored traces. Ingestion is ``otel.py``; the rules are ``TraceService``."""

from __future__ import annotations

from tornado.web import authenticated

from agiflow_lab.core.paging import Page
from agiflow_lab.traces.results import GroupSummary, TraceDetail, TraceSummary
from agiflow_lab.traces.service import (
    GroupQuery,
    Metrics,
    MetricsQuery,
    SpanQuery,
    TraceQuery,
    TraceService,
)
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("traces",)


class TraceBase(AgiflowHandler):
    auth_resource = "agiflow:traces"

    @property
    def traces(self) -> TraceService:
        return self.platform.traces


class TraceListHandler(TraceBase):
    @operation("List traces, newest first (by their earliest span); filters are ANDed", query=TraceQuery,
               response=Page[TraceSummary], tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.traces.list(self.actor, project, self.query(TraceQuery)))


class TraceHandler(TraceBase):
    @operation("Get a trace's spans in start order, a page at a time; 400 for an id that is not 32 lowercase hex",
               query=SpanQuery, response=TraceDetail, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str, trace_id: str) -> None:
        self.finish_json(await self.traces.get(self.actor, project, trace_id, self.query(SpanQuery)))


class SessionListHandler(TraceBase):
    @operation("List sessions (traces' session ids) seen in a time range, most recently seen first",
               query=GroupQuery, response=Page[GroupSummary], tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.traces.groups(self.actor, project, "session", self.query(GroupQuery)))


class UserListHandler(TraceBase):
    @operation("List users (traces' user ids) seen in a time range, most recently seen first",
               query=GroupQuery, response=Page[GroupSummary], tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.traces.groups(self.actor, project, "user", self.query(GroupQuery)))


class MetricsHandler(TraceBase):
    @operation("Span metrics per minute, hour or day, optionally one series per model, prompt version, span "
               "name or user; read from the rollups the span writers keep, never from raw spans",
               query=MetricsQuery, response=Metrics, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.traces.metrics(self.actor, project, self.query(MetricsQuery)))
