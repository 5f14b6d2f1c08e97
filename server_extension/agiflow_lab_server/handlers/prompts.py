from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator
from tornado.web import authenticated

from agiflow_lab.core.paging import Page
from agiflow_lab.prompts.models import (
    LabelMove,
    MoveLabel,
    PromptCreate,
    PromptDiff,
    PromptSummary,
    PromptVersion,
    Rendered,
    RenderRequest,
    VersionCreate,
)
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("prompts",)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    search: str | None = Field(None, max_length=200)
    tag: str | None = None
    include_archived: bool = False
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class FetchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str | None = Field(None, description="Default: production")
    version: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> FetchQuery:
        if self.label is not None and self.version is not None:
            raise ValueError("give label or version, not both")
        return self


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class DiffQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_version: int = Field(alias="from", gt=0)
    to_version: int = Field(alias="to", gt=0)


class HistoryList(BaseModel):
    items: list[LabelMove]


class PromptBase(AgiflowHandler):
    auth_resource = "agiflow:prompts"


class PromptsHandler(PromptBase):
    @operation("List and search prompts", query=ListQuery, response=Page[PromptSummary], tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(ListQuery)
        page = await self.platform.prompts.search(
            project,
            search=q.search,
            tag=q.tag,
            include_archived=q.include_archived,
            cursor=q.cursor,
            limit=q.limit,
        )
        self.finish_json(page)

    @operation("Create a prompt with its first version", body=PromptCreate, response=PromptVersion, status=201,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        body = self.parse(PromptCreate)
        self.finish_json(await self.platform.prompts.create(self.actor, project, body), status=201)


class PromptHandler(PromptBase):
    @operation("Fetch a version by label (default production) or number", query=FetchQuery,
               response=PromptVersion, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        q = self.query(FetchQuery)
        self.finish_json(await self.platform.prompts.get(project, name, label=q.label, version=q.version))


class PromptSummaryHandler(PromptBase):
    @operation("A prompt's metadata, labels and latest version number", response=PromptSummary, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        self.finish_json(await self.platform.prompts.summary(project, name))


class VersionsHandler(PromptBase):
    @operation("List versions, newest first", query=PageQuery, response=Page[PromptVersion], tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        q = self.query(PageQuery)
        self.finish_json(await self.platform.prompts.versions(project, name, cursor=q.cursor, limit=q.limit))

    @operation("Add an immutable version", body=VersionCreate, response=PromptVersion, status=201, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        body = self.parse(VersionCreate)
        self.finish_json(await self.platform.prompts.add_version(self.actor, project, name, body), status=201)


class VersionHandler(PromptBase):
    @operation("Get one version", response=PromptVersion, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str, version: str) -> None:
        number = self.path_int("version", version)
        self.finish_json(await self.platform.prompts.get(project, name, version=number))


class LabelHandler(PromptBase):
    @operation("Point a label at a version (audited, reversible)", body=MoveLabel, response=PromptVersion,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def put(self, project: str, name: str, label: str) -> None:
        body = self.parse(MoveLabel)
        self.finish_json(await self.platform.prompts.move_label(self.actor, project, name, label, body.version))

    @operation("Remove a label", status=204, tags=TAGS)
    @authenticated
    @authorized
    async def delete(self, project: str, name: str, label: str) -> None:
        await self.platform.prompts.remove_label(self.actor, project, name, label)
        self.finish_json(None, status=204)


class LabelHistoryHandler(PromptBase):
    @operation("Where a label has pointed, newest move first", response=HistoryList, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str, label: str) -> None:
        self.finish_json(await self.platform.prompts.label_history(project, name, label))


class LabelRollbackHandler(PromptBase):
    @operation("Undo a label's last move", response=PromptVersion, tags=TAGS)
    @authenticated
    @authorized
    async def post(self, project: str, name: str, label: str) -> None:
        self.finish_json(await self.platform.prompts.rollback_label(self.actor, project, name, label))


class RenderHandler(PromptBase):
    # Rendering changes nothing, so a viewer may do it even though it is a POST.
    auth_actions = {"POST": "read"}

    @operation("Render a version with variables (missing or unknown variables are a 400)", body=RenderRequest,
               response=Rendered, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        body = self.parse(RenderRequest)
        self.finish_json(await self.platform.prompts.render(project, name, body))


class DiffHandler(PromptBase):
    @operation("Diff two versions: template and parameters", query=DiffQuery, response=PromptDiff, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        q = self.query(DiffQuery)
        self.finish_json(await self.platform.prompts.diff(project, name, q.from_version, q.to_version))


class ArchiveHandler(PromptBase):
    @operation("Archive a prompt: hidden from lists, still fetchable, no new versions", response=PromptSummary,
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        self.finish_json(await self.platform.prompts.set_archived(self.actor, project, name, True))

    @operation("Unarchive a prompt", response=PromptSummary, tags=TAGS)
    @authenticated
    @authorized
    async def delete(self, project: str, name: str) -> None:
        self.finish_json(await self.platform.prompts.set_archived(self.actor, project, name, False))
