"""Projects (workspaces) and their members. Every other resource hangs off a project.

Who may change membership, and what no change may do:

- The server's admins (``ServerAdmins``: the server owner) can never be demoted or removed from a project
  they belong to, by anyone, themselves included: whoever runs the server cannot be locked out of it.
- A project keeps at least one *real* owner. Anyone can be named a member, so a name proves nothing; a
  real member is a server admin or a user this server has seen signed in (recorded on their first
  authenticated request, ``note_user``). Adding a made-up owner therefore does not let the last real one be
  demoted or removed.
- API keys do not manage members unless the deployment says so (``Settings.keys_manage_members``): a
  leaked CI key should not be able to hand out access or push people out.
"""

from __future__ import annotations

from agiflow_lab.audit import store as audit
from agiflow_lab.authz import store as policy
from agiflow_lab.authz.admins import ServerAdmins
from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, Forbidden, InvalidInput, NotFound
from agiflow_lab.projects import store
from agiflow_lab.projects.models import ROLES, Member, Project, ProjectCreate, ProjectUpdate, Role

_RANK: dict[str, int] = {role: len(ROLES) - i for i, role in enumerate(ROLES)}  # owner 3, editor 2, viewer 1


def _rank(role: str | None) -> int:
    return _RANK.get(role or "", 0)


class ProjectService:
    def __init__(
        self, db: Database, authz: Authorizer, *, admins: ServerAdmins | None = None, keys_manage_members: bool = False
    ) -> None:
        self.db = db
        self.authz = authz
        self.admins = admins or ServerAdmins()
        self.keys_manage_members = keys_manage_members
        self._ids: dict[str, int] = {}  # slugs never change, so this cache never goes stale
        self._noted: set[str] = set()  # users already recorded as known by this process

    async def note_user(self, actor: Actor) -> None:
        """Remember that this user has signed in (once per process; the row is written once ever)."""
        if actor.kind != "user" or actor.principal in self._noted:
            return
        async with self.db.connection() as conn:
            await store.note_user(conn, actor.principal)
        self._noted.add(actor.principal)

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

    async def update(self, actor: Actor, slug: str, body: ProjectUpdate) -> Project:
        """Only the fields sent change (``null`` is a value only for ``trace_retention_days``); audited."""
        changes = body.model_dump(include=body.model_fields_set)
        for field in ("name", "description"):
            if field in changes and changes[field] is None:
                raise InvalidInput(f"{field} cannot be null", {"field": field})
            if "\x00" in (changes.get(field) or ""):
                raise InvalidInput(f"{field} contains a NUL character", {"field": field})
        async with self.db.transaction() as conn:
            before = await store.by_slug(conn, slug)
            if before is None:
                raise NotFound(f"project {slug!r} does not exist", {"project": slug})
            row = await store.update(conn, slug, changes) if changes else before
            assert row is not None  # locked by nothing, but archiving goes through this service too
            await audit.record(
                conn, project_id=row["id"], actor=actor, action="project.update", resource_type="project",
                resource_id=slug, before={k: before[k] for k in changes}, after=changes,
            )  # fmt: skip
        return Project(**{k: v for k, v in row.items() if k != "id"}, role=self.authz.role(actor, slug))  # type: ignore[arg-type]

    async def members(self, slug: str) -> list[Member]:
        await self.resolve_id(slug)
        async with self.db.connection() as conn:
            return [Member(user=u, role=r) for u, r in await policy.members(conn, slug)]  # type: ignore[arg-type]

    def _may_manage_members(self, actor: Actor) -> None:
        if actor.kind == "key" and not self.keys_manage_members:
            raise Forbidden(
                "API keys cannot manage members on this server (keys_manage_members is off); "
                "sign in as a project owner to change members",
                {"setting": "keys_manage_members"},
            )

    async def set_member(self, actor: Actor, slug: str, user: str, role: Role) -> Member:
        self._may_manage_members(actor)
        project_id = await self.resolve_id(slug)
        if user.startswith("key:"):
            raise Forbidden("API keys get their role when they are created", {"field": "user"})
        async with self.db.transaction() as conn:
            await conn.execute("SELECT 1 FROM control.projects WHERE id = %s FOR UPDATE", (project_id,))
            current = await policy.role_of(conn, user, slug)
            if self.admins.is_admin_user(user) and _rank(role) < _rank(current):
                raise Forbidden(
                    f"{user!r} is the server's owner and cannot be demoted in any project", {"field": "user"}
                )
            if current == "owner" and role != "owner":
                await self._keep_a_real_owner(conn, slug, user)
            previous = await policy.set_role(conn, user, slug, role)
            await audit.record(
                conn, project_id=project_id, actor=actor, action="member.set", resource_type="member",
                resource_id=user, before=None if previous is None else {"role": previous}, after={"role": role},
            )  # fmt: skip
        await self.authz.reload()
        return Member(user=user, role=role)

    async def remove_member(self, actor: Actor, slug: str, user: str) -> None:
        self._may_manage_members(actor)
        project_id = await self.resolve_id(slug)
        async with self.db.transaction() as conn:
            await conn.execute("SELECT 1 FROM control.projects WHERE id = %s FOR UPDATE", (project_id,))
            current = await policy.role_of(conn, user, slug)
            if current is None or user.startswith("key:"):  # a key's role goes with the key (revoke it)
                raise NotFound(f"{user!r} is not a member of {slug!r}", {"user": user})
            if self.admins.is_admin_user(user):
                raise Forbidden(
                    f"{user!r} is the server's owner and cannot be removed from any project", {"field": "user"}
                )
            if current == "owner":
                await self._keep_a_real_owner(conn, slug, user)
            previous = await policy.remove_role(conn, user, slug)
            await audit.record(
                conn, project_id=project_id, actor=actor, action="member.remove", resource_type="member",
                resource_id=user, before={"role": previous},
            )  # fmt: skip
        await self.authz.reload()

    async def _keep_a_real_owner(self, conn: Conn, slug: str, user: str) -> None:
        """Refuse a change that would leave no real owner besides ``user`` (see the module docstring)."""
        others = [u for u, r in await policy.members(conn, slug) if r == "owner" and u != user]
        known = await store.known_users(conn, others)
        if not any(self.admins.is_admin_user(u) or u in known for u in others):
            raise Conflict(
                "a project must keep at least one owner who has signed in to this server; "
                "owners who never have do not count",
                {"field": "user", "user": user},
            )
