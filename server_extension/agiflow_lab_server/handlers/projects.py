from __future__ import annotations

from pydantic import BaseModel, Field
from tornado.web import authenticated

from agiflow_lab.audit.models import AuditEntry
from agiflow_lab.core.paging import Page
from agiflow_lab.keys.models import ApiKey, CreatedKey, KeyCreate
from agiflow_lab.projects.models import Member, Project, ProjectCreate, ProjectUpdate, SetMember
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation


class ProjectList(BaseModel):
    items: list[Project]


class MemberList(BaseModel):
    items: list[Member]


class KeyList(BaseModel):
    items: list[ApiKey]


class AuditQuery(BaseModel):
    resource_type: str | None = None
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class ProjectsHandler(AgiflowHandler):
    auth_resource = "agiflow:projects"

    @operation("List the projects the caller belongs to", response=ProjectList, tags=("projects",))
    @authenticated
    @authorized
    async def get(self) -> None:
        self.finish_json(await self.platform.projects.list_for(self.actor))

    @operation("Create a project; the caller becomes its owner", body=ProjectCreate, response=Project,
               status=201, tags=("projects",))  # fmt: skip
    @authenticated
    @authorized
    async def post(self) -> None:
        body = self.parse(ProjectCreate)
        self.finish_json(await self.platform.projects.create(self.actor, body), status=201)


class ProjectHandler(AgiflowHandler):
    auth_resource = "agiflow:project"

    @operation("Get a project", response=Project, tags=("projects",))
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.platform.projects.get(self.actor, project))

    @operation("Change a project's name, description or trace retention (owners)", body=ProjectUpdate,
               response=Project, tags=("projects",))  # fmt: skip
    @authenticated
    @authorized
    async def patch(self, project: str) -> None:
        self.finish_json(await self.platform.projects.update(self.actor, project, self.parse(ProjectUpdate)))


class MembersHandler(AgiflowHandler):
    auth_resource = "agiflow:members"

    @operation("List the project's members and their roles", response=MemberList, tags=("access",))
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.platform.projects.members(project))


class MemberHandler(AgiflowHandler):
    auth_resource = "agiflow:members"

    @operation("Add a member or change their role", body=SetMember, response=Member, tags=("access",))
    @authenticated
    @authorized
    async def put(self, project: str, user: str) -> None:
        body = self.parse(SetMember)
        self.finish_json(await self.platform.projects.set_member(self.actor, project, user, body.role))

    @operation("Remove a member", status=204, tags=("access",))
    @authenticated
    @authorized
    async def delete(self, project: str, user: str) -> None:
        await self.platform.projects.remove_member(self.actor, project, user)
        self.finish_json(None, status=204)


class KeysHandler(AgiflowHandler):
    auth_resource = "agiflow:keys"

    @operation("List the project's API keys (never their secrets)", response=KeyList, tags=("access",))
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        self.finish_json(await self.platform.keys.list(project))

    @operation("Create an API key; the secret is in this response only", body=KeyCreate, response=CreatedKey,
               status=201, tags=("access",))  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        body = self.parse(KeyCreate)
        self.finish_json(await self.platform.keys.create(self.actor, project, body), status=201)


class KeyHandler(AgiflowHandler):
    auth_resource = "agiflow:keys"

    @operation("Revoke an API key", response=ApiKey, tags=("access",))
    @authenticated
    @authorized
    async def delete(self, project: str, key_id: str) -> None:
        self.finish_json(await self.platform.keys.revoke(self.actor, project, key_id))


class AuditHandler(AgiflowHandler):
    auth_resource = "agiflow:audit"

    @operation("Read the project's audit log, newest first", query=AuditQuery, response=Page[AuditEntry],
               tags=("audit",))  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(AuditQuery)
        self.finish_json(
            await self.platform.audit.list(project, resource_type=q.resource_type, cursor=q.cursor, limit=q.limit)
        )
