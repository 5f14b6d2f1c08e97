"""Server admins: the people who run the deployment, as opposed to the owners of its projects.

A project role is handed out by that project's owners, so it cannot be what grants deployment-wide
powers (worker hosts, every project's dead letters) or protection from being removed: an owner could
otherwise make anyone an admin, or remove the person who runs the server. Admins come from the server's
configuration instead: today the server owner (``Settings.owner``); JupyterHub admins can join the set
without changing any caller. API keys are never admins: a key belongs to one project.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agiflow_lab.core.actor import Actor
from agiflow_lab.errors import Forbidden


@dataclass(frozen=True)
class ServerAdmins:
    users: frozenset[str] = frozenset()

    @classmethod
    def of(cls, users: Iterable[str]) -> ServerAdmins:
        return cls(frozenset(u for u in users if u))

    def is_admin(self, actor: Actor) -> bool:
        return actor.kind == "user" and actor.principal in self.users

    def is_admin_user(self, user: str) -> bool:
        return user in self.users

    def check(self, actor: Actor, what: str) -> None:
        if not self.is_admin(actor):
            raise Forbidden(f"only a server admin (the server's owner) may {what}", {"admin_only": True})
