from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from agiflow_lab.projects.models import Role


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role = "viewer"


class ApiKey(BaseModel):
    id: str
    name: str
    role: Role
    prefix: str = Field(description="The first characters of the key, to recognise it")
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedKey(ApiKey):
    secret: str = Field(description="The whole key. Shown once; only its hash is stored.")
