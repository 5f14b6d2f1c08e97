from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tornado.web import authenticated

from agiflow_lab.core.paging import Page
from agiflow_lab.evals.evaluators.registry import describe
from agiflow_lab.evals.models import Change, Comparison, ItemResult, Run, RunSubmit
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("evaluations",)


class RunQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str | None = None
    prompt: str | None = None
    cursor: str | None = None
    limit: int = Field(20, ge=1, le=100)


class ResultsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    failed_only: bool = Field(False, description="Only items that did not pass (errors included)")
    cursor: str | None = None
    limit: int = Field(100, ge=1, le=1000)


class CompareQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: list[str] = Field(description="Comma-separated run ids; the first is the baseline", min_length=2)
    change: Change | None = Field(
        None, description="Default: every item whose verdict changed (pass ↔ fail) or that one run lacks"
    )
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=500)

    @field_validator("runs", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class EvaluatorType(BaseModel):
    type: str
    description: str
    config_schema: dict[str, Any]


class EvaluatorTypes(BaseModel):
    items: list[EvaluatorType]


class EvalBase(AgiflowHandler):
    auth_resource = "agiflow:evals"

    @property
    def evals(self) -> Any:
        return self.platform.evals


class RunsHandler(EvalBase):
    @operation("List evaluation runs, newest first, with their aggregates", query=RunQuery, response=Page[Run],
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(RunQuery)
        self.finish_json(await self.evals.search(project, dataset=q.dataset, prompt=q.prompt, cursor=q.cursor,
                                                 limit=q.limit))  # fmt: skip

    @operation("Start an evaluation run (prompt version × model × dataset version × evaluators) as a job",
               body=RunSubmit, response=Run, status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        run, created = await self.evals.submit(self.actor, project, self.parse(RunSubmit))
        self.finish_json(run, status=201 if created else 200)


class RunHandler(EvalBase):
    @operation("Get a run: state, pinned references and live aggregates", response=Run, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, run_id: str) -> None:
        self.finish_json(await self.evals.get(project, run_id))


class RunResultsHandler(EvalBase):
    @operation("A run's per-item results in dataset order", query=ResultsQuery, response=Page[ItemResult], tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, run_id: str) -> None:
        q = self.query(ResultsQuery)
        self.finish_json(await self.evals.results(project, run_id, cursor=q.cursor, limit=q.limit,
                                                  failed_only=q.failed_only))  # fmt: skip


class RunCancelHandler(EvalBase):
    @operation("Cancel a run; items already scored are kept", response=Run, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str, run_id: str) -> None:
        self.finish_json(await self.evals.cancel(self.actor, project, run_id))


class CompareHandler(EvalBase):
    @operation("Compare runs: aggregates side by side and the items that regressed or improved",
               query=CompareQuery, response=Comparison, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(CompareQuery)
        self.finish_json(await self.evals.compare(project, q.runs, change=q.change, cursor=q.cursor, limit=q.limit))


class EvaluatorTypesHandler(EvalBase):
    @operation("The built-in evaluator types and their options", response=EvaluatorTypes, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(EvaluatorTypes(items=[EvaluatorType.model_validate(d) for d in describe()]))
