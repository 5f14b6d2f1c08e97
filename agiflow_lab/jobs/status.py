"""``/status``: queue figures, scoped to what the caller may see.

Queue depth and lag of the whole deployment say how busy other projects are, and the worker list names
hosts and pids (a map of the deployment). So a server admin sees everything; anyone else sees the figures
of one project they may read (an API key: its own project by default) and only a count of live workers.
The bus's state (up or down, since when) is for everyone: a job that waits because the broker is gone
should say so to whoever submitted it. Why it is down names hosts and ports, so only admins see that.
"""

from __future__ import annotations

from agiflow_lab.authz.admins import ServerAdmins
from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.authz.policy import READ
from agiflow_lab.bus.health import BusHealth
from agiflow_lab.core.actor import Actor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import Forbidden
from agiflow_lab.jobs import store
from agiflow_lab.jobs.models import BusStatus, QueueStatus, WorkerStatus
from agiflow_lab.jobs.ownership import STALE_AFTER_SECONDS
from agiflow_lab.projects.service import ProjectService


class StatusService:
    def __init__(
        self, db: Database, authz: Authorizer, projects: ProjectService, admins: ServerAdmins,
        stale_after: float = STALE_AFTER_SECONDS,
    ) -> None:  # fmt: skip
        self.db = db
        self.stale_after = stale_after
        self.authz = authz
        self.projects = projects
        self.admins = admins
        self.bus_health: BusHealth | None = None  # set by the process that runs the bus (the server)

    def follow_bus(self, health: BusHealth) -> None:
        self.bus_health = health

    def _bus(self, admin: bool) -> BusStatus | None:
        h = self.bus_health
        if h is None:
            return None
        return BusStatus(backend=h.backend, state=h.state, since=h.since, error=h.error if admin else None)

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
            workers = [WorkerStatus.model_validate(w) for w in await store.workers(conn, self.stale_after)]
        oldest = counts["oldest"]
        return QueueStatus(
            project=project,
            bus=self._bus(admin),
            workers=workers if admin else [],
            workers_alive=sum(w.alive for w in workers),
            queued=counts["queued"],
            dispatched=counts["dispatched"],
            running=counts["running"],
            oldest_queued_seconds=None if oldest is None else float(oldest),
        )
