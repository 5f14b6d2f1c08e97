from __future__ import annotations

from agiflow_lab.audit import store
from agiflow_lab.audit.models import AuditEntry
from agiflow_lab.core.paging import Cursor, KeyInt, Page, check_limit
from agiflow_lab.db.database import Database
from agiflow_lab.projects.service import ProjectService

CURSOR = Cursor[int](KeyInt)  # the last entry's id, newest first


class AuditService:
    def __init__(self, db: Database, projects: ProjectService) -> None:
        self.db = db
        self.projects = projects

    async def list(
        self, project: str, *, resource_type: str | None, cursor: str | None, limit: int
    ) -> Page[AuditEntry]:
        check_limit(limit)
        before = CURSOR.decode(cursor)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.list_entries(
                conn, project_id, resource_type=resource_type, before_id=before, limit=limit + 1
            )
        return Page[AuditEntry](items=rows[:limit], next_cursor=CURSOR.next(rows, limit, lambda e: e.id))
