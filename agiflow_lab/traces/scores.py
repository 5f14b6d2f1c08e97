"""Scores on traces and spans: who may give them, what a score is, and agiflow-sdk's two PATCH calls.

A score is numeric, categorical or boolean (its JSON type says which) and records its source: ``human``
for a signed-in user, ``api`` for an API key, ``eval`` for an evaluation run. Scoring a trace needs WRITE
on ``agiflow:traces``; reading, READ. A score may name a trace the writers have not stored yet.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.authz.policy import READ, WRITE
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.paging import MAX_LIMIT, Page
from agiflow_lab.errors import InvalidInput, NotFound
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.traces.annotations import AnnotationStore, NewScore, ScoreRow
from agiflow_lab.traces.ingest import RESOURCE
from agiflow_lab.traces.results import Score, ScoreSource

TraceId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
SpanId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
ScoreName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Category = Annotated[str, StringConstraints(min_length=1, max_length=500)]
# What agiflow-sdk sends as an action or step id: its own 0x-prefixed hex id, or an alias the app chose.
SDK_REF = re.compile(r"[^\x00-\x1f]{1,200}")
SDK_SCORE_NAME = "score"


class ScoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trace_id: TraceId = Field(description="32 lowercase hex digits")
    span_id: SpanId | None = Field(None, description="16 lowercase hex digits: a span's score; null: the trace's")
    name: ScoreName
    value: bool | float | Category = Field(
        description="true/false: boolean; a number: numeric; text: categorical (the JSON type decides)"
    )
    comment: str | None = Field(None, max_length=2000)


class ScoreQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trace_id: TraceId | None = None
    span_id: SpanId | None = None
    name: ScoreName | None = None
    source: ScoreSource | None = None
    limit: int = Field(50, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class SdkScore(BaseModel):
    """agiflow-sdk's ``report_score`` body."""

    model_config = ConfigDict(extra="forbid")
    score: float


def to_api(row: ScoreRow) -> Score:
    return Score(
        id=row.id, trace_id=row.trace_id, trace_alias=row.trace_alias, span_id=row.span_id, name=row.name,
        data_type=row.data_type, value=row.value, source=row.source, comment=row.comment, author=row.author,
        created_at=row.created_at,
    )  # fmt: skip


def source_of(actor: Actor) -> ScoreSource:
    return "eval" if actor.kind == "system" else "api" if actor.kind == "key" else "human"


def sdk_ref(value: str, hex_digits: int, field: str) -> tuple[str | None, str | None]:
    """(id, alias) from agiflow-sdk's path segment: ``0x`` + hex of the id's length is an id, else an alias."""
    if not SDK_REF.fullmatch(value):
        raise InvalidInput(f"{field} must be 1 to 200 printable characters", {"field": field})
    digits = value[2:] if value[:2].lower() == "0x" else value
    if len(digits) == hex_digits and re.fullmatch(r"[0-9a-fA-F]+", digits):
        return digits.lower(), None
    return None, value


class ScoreService:
    def __init__(self, projects: ProjectService, authz: Authorizer, store: AnnotationStore) -> None:
        self.projects = projects
        self.authz = authz
        self.store = store

    async def create(self, actor: Actor, project: str, body: ScoreIn) -> Score:
        self.authz.check(actor, project, RESOURCE, WRITE)
        project_id = await self.projects.resolve_id(project)
        row = await self.store.add_score(
            project_id,
            NewScore(trace_id=body.trace_id, trace_alias=None, span_id=body.span_id, name=body.name,
                     value=body.value, source=source_of(actor), comment=body.comment, author=actor.principal),
        )  # fmt: skip
        return to_api(row)

    async def list(self, actor: Actor, project: str, query: ScoreQuery) -> Page[Score]:
        """Newest first. With ``trace_id`` this is that trace's scores, including those given to an
        agiflow-sdk alias once a read of the trace has bound it (``TraceService.get``)."""
        self.authz.check(actor, project, RESOURCE, READ)
        project_id = await self.projects.resolve_id(project)
        page = await self.store.list_scores(
            project_id, trace_id=query.trace_id, span_id=query.span_id, name=query.name, source=query.source,
            limit=query.limit, cursor=query.cursor,
        )  # fmt: skip
        return Page(items=[to_api(r) for r in page.items], next_cursor=page.next_cursor)

    async def delete(self, actor: Actor, project: str, score_id: str) -> None:
        self.authz.check(actor, project, RESOURCE, WRITE)
        try:
            key = uuid.UUID(score_id)
        except ValueError:
            raise InvalidInput("score_id must be a UUID", {"field": "score_id"}) from None
        project_id = await self.projects.resolve_id(project)
        if not await self.store.delete_score(project_id, key):
            raise NotFound(f"score {score_id} not found in project {project!r}", {"score_id": score_id})

    # ------------------------------------------------------------ agiflow-sdk

    async def sdk_score(self, actor: Actor, project: str, action_id: str, body: SdkScore) -> Score:
        """``PATCH .../agiflow/actions/{id}/score``: set the trace's ``score`` (a second call replaces it).
        The id is the trace's (``0x`` + 32 hex) or an alias from ``associate_trace``."""
        self.authz.check(actor, project, RESOURCE, WRITE)
        trace_id, alias = sdk_ref(action_id, 32, "action_id")
        project_id = await self.projects.resolve_id(project)
        row = await self.store.add_score(
            project_id,
            NewScore(trace_id=trace_id, trace_alias=alias, span_id=None, name=SDK_SCORE_NAME, value=body.score,
                     source=source_of(actor), comment=None, author=actor.principal),
            replace=True,
        )  # fmt: skip
        return to_api(row)

    async def sdk_step(self, actor: Actor, project: str, step_id: str, body: dict[str, Any]) -> None:
        """``PATCH .../agiflow/steps/{id}``: remember ``body`` for the span (its id or alias); the trace
        detail shows it with the span (``TraceSpan.updates``)."""
        self.authz.check(actor, project, RESOURCE, WRITE)
        span_id, alias = sdk_ref(step_id, 16, "step_id")
        project_id = await self.projects.resolve_id(project)
        await self.store.add_span_update(project_id, span_id or str(alias), body, actor.principal)
