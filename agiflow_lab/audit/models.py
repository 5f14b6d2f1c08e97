from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntry(BaseModel):
    id: int
    actor: str
    action: str
    resource_type: str
    resource_id: str
    before: Any = None
    after: Any = None
    at: datetime
