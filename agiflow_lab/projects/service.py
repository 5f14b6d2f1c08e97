"""Projects (workspaces) and their members. Every other resource hangs off a project."""

from __future__ import annotations

from agiflow_lab.audit import store as audit
from agiflow_lab.authz import store as policy
from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, Forbidden, NotFound
from agiflow_lab.projects import store
from agiflow_lab.projects.models import Member, Project, ProjectCreate, Role


class ProjectService:
    def __init__(self, db: Database, authz: Authorizer) -> None:
        self.db = db
        self.authz = authz
        self._ids: dict[str, int] = {}  # slugs never change, so this cache never goes stale

    async def resolve_id(self, slug: str) -> int:
        if (cached := self._ids.get(slug)) is not None:
            return cached
        async with self.db.connection() as conn:
            row = await store.by_slug(conn, slug)
        if row is None:
            raise NotFound(f"project {slug!r} does not exist", {"project": slug})
        self._ids[slug] = row["id"]
        return int(row["id"])

    async def ensure(self, slug: str, name: str, owner: str) -> None:
        """Create the project with this owner if it does not exist (the default project on first start)."""
        async with self.db.transaction() as conn:
            row = await store.insert(conn, slug, name, "", owner)
            if row is not None:
                await policy.set_role(conn, owner, slug, "owner")
                await audit.record(
                    conn, project_id=row["id"], actor=Actor.system(), action="project.create",
                    resource_type="project", resource_id=slug, after={"owner": owner},
                )  # fmt: skip

    async def create(self, actor: Actor, body: ProjectCreate) -> Project:
        if actor.kind != "user":
            raise Forbidden("only Jupyter users create projects; API keys belong to one project")
        async with self.db.transaction() as conn:
            row = await store.insert(conn, body.slug, body.name, body.description, actor.principal)
            if row is None:
                raise Conflict(f"project {body.slug!r} already exists", {"field": "slug"})
            await policy.set_role(conn, actor.principal, body.slug, "owner")
            await audit.record(
                conn, project_id=row["id"], actor=actor, action="project.create",
                resource_type="project", resource_id=body.slug, after=body.model_dump(),
            )  # fmt: skip
        await self.authz.reload()
        return Project(**{k: v for k, v in row.items() if k != "id"}, role="owner")

    async def list_for(self, actor: Actor) -> list[Project]:
        async with self.db.connection() as conn:
            roles = await policy.projects_of(conn, actor.principal)
            rows = await store.by_slugs(conn, list(roles))
        return [Project(**{k: v for k, v in r.items() if k != "id"}, role=roles[r["slug"]]) for r in rows]  # type: ignore[arg-type]

    async def get(self, actor: Actor, slug: str) -> Project:
        async with self.db.connection() as conn:
            row = await store.by_slug(conn, slug)
        if row is None:
            raise NotFound(f"project {slug!r} does not exist", {"project": slug})
        role = self.authz.role(actor, slug)
        return Project(**{k: v for k, v in row.items() if k != "id"}, role=role)  # type: ignore[arg-type]

    async def members(self, slug: str) -> list[Member]:
        await self.resolve_id(slug)
        async with self.db.connection() as conn:
            return [Member(user=u, role=r) for u, r in await policy.members(conn, slug)]  # type: ignore[arg-type]

    async def set_member(self, actor: Actor, slug: str, user: str, role: Role) -> Member:
        project_id = await self.resolve_id(slug)
        if user.startswith("key:"):
            raise Forbidden("API keys get their role when they are created", {"field": "user"})
        async with self.db.transaction() as conn:
            await conn.execute("SELECT 1 FROM control.projects WHERE id = %s FOR UPDATE", (project_id,))
            if role != "owner":
                await self._keep_an_owner(conn, slug, user)
            previous = await policy.set_role(conn, user, slug, role)
            await audit.record(
                conn, project_id=project_id, actor=actor, action="member.set", resource_type="member",
                resource_id=user, before=None if previous is None else {"role": previous}, after={"role": role},
            )  # fmt: skip
        await self.authz.reload()
        return Member(user=user, role=role)

    async def remove_member(self, actor: Actor, slug: str, user: str) -> None:
        project_id = await self.resolve_id(slug)
        async with self.db.transaction() as conn:
            await conn.execute("SELECT 1 FROM control.projects WHERE id = %s FOR UPDATE", (project_id,))
            await self._keep_an_owner(conn, slug, user)
            previous = await policy.remove_role(conn, user, slug)
            if previous is None:
                raise NotFound(f"{user!r} is not a member of {slug!r}", {"user": user})
            await audit.record(
                conn, project_id=project_id, actor=actor, action="member.remove", resource_type="member",
                resource_id=user, before={"role": previous},
            )  # fmt: skip
        await self.authz.reload()

    @staticmethod
    async def _keep_an_owner(conn: Conn, slug: str, user: str) -> None:
        owners = [u for u, r in await policy.members(conn, slug) if r == "owner"]
        if owners == [user]:
            raise Conflict("a project must keep at least one owner", {"field": "user", "user": user})
