from __future__ import annotations

from agiflow_lab.audit import store
from agiflow_lab.audit.models import AuditEntry
from agiflow_lab.core.paging import Page, check_limit, decode_cursor, encode_cursor
from agiflow_lab.db.database import Database
from agiflow_lab.errors import InvalidInput
from agiflow_lab.projects.service import ProjectService


class AuditService:
    def __init__(self, db: Database, projects: ProjectService) -> None:
        self.db = db
        self.projects = projects

    async def list(
        self, project: str, *, resource_type: str | None, cursor: str | None, limit: int
    ) -> Page[AuditEntry]:
        check_limit(limit)
        before = decode_cursor(cursor)
        if before is not None and not isinstance(before, int):
            raise InvalidInput("cursor is not one this API issued", {"field": "cursor"})
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.list_entries(
                conn, project_id, resource_type=resource_type, before_id=before, limit=limit + 1
            )
        items = rows[:limit]
        return Page[AuditEntry](items=items, next_cursor=encode_cursor(items[-1].id) if len(rows) > limit else None)
