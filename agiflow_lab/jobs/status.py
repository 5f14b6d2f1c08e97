"""``/status``: queue figures, scoped to what the caller may see.

Queue depth and lag of the whole deployment say how busy other projects are, and the worker list names
hosts and pids (a map of the deployment). So a server admin sees everything; anyone else sees the figures
of one project they may read (an API key: its own project by default) and only a count of live workers.
"""

from __future__ import annotations

from agiflow_lab.authz.admins import ServerAdmins
from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.authz.policy import READ
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import Forbidden
from agiflow_lab.jobs import store
from agiflow_lab.jobs.models import QueueStatus, WorkerStatus
from agiflow_lab.jobs.ownership import STALE_AFTER_SECONDS
from agiflow_lab.projects.service import ProjectService


class StatusService:
    def __init__(self, db: Database, authz: Authorizer, projects: ProjectService, admins: ServerAdmins) -> None:
        self.db = db
        self.authz = authz
        self.projects = projects
        self.admins = admins

    async def status(self, actor: Actor, project: str | None = None) -> QueueStatus:
        admin = self.admins.is_admin(actor)
        if project is None and not admin:
            if actor.key_project is None:
                raise Forbidden(
                    "deployment-wide status is for server admins; ask for one of your projects: ?project=<slug>",
                    {"field": "project"},
                )
            project = actor.key_project
        project_id = None
        if project is not None:
            self.authz.check(actor, project, "agiflow:jobs", READ)
            project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            counts = await store.queue_counts(conn, project_id)
            workers = [WorkerStatus.model_validate(w) for w in await store.workers(conn, STALE_AFTER_SECONDS)]
        oldest = counts["oldest"]
        return QueueStatus(
            project=project,
            workers=workers if admin else [],
            workers_alive=sum(w.alive for w in workers),
            queued=counts["queued"],
            dispatched=counts["dispatched"],
            running=counts["running"],
            oldest_queued_seconds=None if oldest is None else float(oldest),
        )
