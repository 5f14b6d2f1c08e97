"""Casbin enforcement with the policy held in memory and reloaded on change.

Checking a request must not cost a database round trip (the prompt fetch path is hot), so each
process keeps a Casbin enforcer in memory. Writes go to Postgres and ``NOTIFY agiflow_policy`` in the
same transaction; every process LISTENs and swaps in a freshly loaded enforcer, so a role revoked on
one API replica is revoked on all of them within milliseconds.
"""

from __future__ import annotations

import logging
from importlib import resources

import casbin

from agiflow_lab.authz import store
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.db.listen import ListenConn, Listener
from agiflow_lab.errors import Forbidden

log = logging.getLogger(__name__)


def _new_enforcer() -> casbin.Enforcer:
    model_path = str(resources.files("agiflow_lab.authz") / "model.conf")
    enforcer = casbin.Enforcer(model_path)
    enforcer.logger.disabled = True
    return enforcer


class Authorizer:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._enforcer = _new_enforcer()
        # Any policy change, and every reconnect (a change may have been missed), loads the policy afresh.
        self._listener = Listener(db, store.CHANNEL, on_connect=self._reload_on_connect, on_notify=self._reload_on_notify,
                                  name="policy listener")  # fmt: skip
        # Casbin walks every policy row per call; decisions are remembered until the policy changes.
        self._decisions: dict[tuple[str, str, str, str], bool] = {}

    async def start(self) -> None:
        async with self.db.transaction() as conn:
            await store.seed_role_permissions(conn)
        await self.reload()
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def reload(self) -> None:
        async with self.db.connection() as conn:
            rules = await store.all_rules(conn)
        enforcer = _new_enforcer()
        policies = [values for ptype, values in rules if ptype == "p"]
        groupings = [values for ptype, values in rules if ptype == "g"]
        if policies:
            enforcer.add_policies(policies)
        if groupings:
            enforcer.add_grouping_policies(groupings)
        self._enforcer = enforcer
        self._decisions = {}

    async def _reload_on_connect(self, _conn: ListenConn) -> None:
        await self.reload()

    async def _reload_on_notify(self, _payload: str) -> None:
        await self.reload()

    def allowed(self, actor: Actor, project: str, resource: str, action: str) -> bool:
        if actor.kind == "system":
            return True
        if actor.kind == "key" and actor.key_project != project:
            return False
        key = (actor.principal, project, resource, action)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decisions[key] = bool(self._enforcer.enforce(*key))
        return decision

    def check(self, actor: Actor, project: str, resource: str, action: str) -> None:
        if not self.allowed(actor, project, resource, action):
            raise Forbidden(
                f"{actor.principal} may not {action} {resource} in project {project!r}",
                {"resource": resource, "action": action, "project": project},
            )

    def role(self, actor: Actor, project: str) -> str | None:
        roles = self._enforcer.get_roles_for_user_in_domain(actor.principal, project)
        return roles[0] if roles else None
