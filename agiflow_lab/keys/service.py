"""Project API keys: created with a role, shown once, stored hashed, revocable.

Authentication results are cached for a few seconds because every SDK request presents a key;
revocation also removes the key's Casbin role (and notifies every process), so a revoked key is
refused at once even while its authentication is still cached.
"""

from __future__ import annotations

import time

from agiflow_lab.audit import store as audit
from agiflow_lab.authz import store as policy
from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import NotFound, Unauthenticated
from agiflow_lab.keys import secrets, store
from agiflow_lab.keys.models import ApiKey, CreatedKey, KeyCreate
from agiflow_lab.projects.service import ProjectService

TOUCH_EVERY = 60.0  # seconds between last_used_at writes for one key


def _model(row: dict[str, object]) -> ApiKey:
    return ApiKey.model_validate({**row, "prefix": secrets.display_prefix(str(row["id"]))})


class KeyService:
    def __init__(self, db: Database, authz: Authorizer, projects: ProjectService, cache_seconds: float) -> None:
        self.db = db
        self.authz = authz
        self.projects = projects
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Actor, str]] = {}  # key id → (expires, actor, hash)
        self._touched: dict[str, float] = {}

    async def create(self, actor: Actor, project: str, body: KeyCreate) -> CreatedKey:
        project_id = await self.projects.resolve_id(project)
        key_id, whole, secret_hash = secrets.new_key()
        async with self.db.transaction() as conn:
            row = await store.insert(conn, key_id, project_id, body.name, body.role, secret_hash, actor.principal)
            await policy.set_role(conn, f"key:{key_id}", project, body.role)
            await audit.record(
                conn, project_id=project_id, actor=actor, action="key.create", resource_type="api_key",
                resource_id=key_id, after={"name": body.name, "role": body.role},
            )  # fmt: skip
        await self.authz.reload()
        return CreatedKey.model_validate({**_model(row).model_dump(), "secret": whole})

    async def list(self, project: str) -> list[ApiKey]:
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            return [_model(row) for row in await store.list_for_project(conn, project_id)]

    async def revoke(self, actor: Actor, project: str, key_id: str) -> ApiKey:
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            row = await store.revoke(conn, project_id, key_id)
            if row is None:
                raise NotFound(f"no key {key_id!r} in project {project!r}", {"key": key_id})
            await policy.remove_role(conn, f"key:{key_id}", project)
            await audit.record(
                conn, project_id=project_id, actor=actor, action="key.revoke", resource_type="api_key",
                resource_id=key_id,
            )  # fmt: skip
        self._cache.pop(key_id, None)
        await self.authz.reload()
        return _model(row)

    async def authenticate(self, token: str) -> Actor:
        parsed = secrets.parse(token)
        if parsed is None:
            raise Unauthenticated("the API key is malformed")
        key_id, secret = parsed
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached and cached[0] > now and secrets.matches(secret, cached[2]):
            return cached[1]
        async with self.db.connection() as conn:
            row = await store.for_auth(conn, key_id)
            if row is None or row["revoked_at"] is not None or not secrets.matches(secret, row["secret_hash"]):
                raise Unauthenticated("the API key is unknown or revoked")
            if now - self._touched.get(key_id, -TOUCH_EVERY) >= TOUCH_EVERY:
                self._touched[key_id] = now
                await store.touch(conn, key_id)
        actor = Actor.for_key(key_id, row["project"])
        self._cache[key_id] = (now + self.cache_seconds, actor, row["secret_hash"])
        return actor
