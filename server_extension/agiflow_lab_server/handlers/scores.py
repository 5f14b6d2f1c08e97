"""``/projects/{project}/scores``: scores on traces and spans. The rules are ``ScoreService``."""

from __future__ import annotations

from tornado.web import authenticated

from agiflow_lab.core.paging import Page
from agiflow_lab.traces.results import Score
from agiflow_lab.traces.scores import ScoreIn, ScoreQuery, ScoreService
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("traces",)


class ScoreBase(AgiflowHandler):
    auth_resource = "agiflow:traces"

    @property
    def scores(self) -> ScoreService:
        return self.platform.scores


class ScoresHandler(ScoreBase):
    @operation("List scores, newest first; filter by trace, span, name or source", query=ScoreQuery,
               response=Page[Score], tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.scores.list(self.actor, project, self.query(ScoreQuery)))

    @operation("Score a trace or one of its spans: numeric, categorical or boolean by the value's JSON type; "
               "the source is human for a user, api for an API key", body=ScoreIn, response=Score, status=201,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        self.finish_json(await self.scores.create(self.actor, project, self.parse(ScoreIn)), status=201)


class ScoreHandler(ScoreBase):
    @operation("Delete a score", status=204, tags=TAGS)
    @authenticated
    @authorized
    async def delete(self, project: str, score_id: str) -> None:
        await self.scores.delete(self.actor, project, score_id)
        self.finish_json(None, status=204)
