from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ProjectSlug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", examples=["default"])]
Role = Literal["owner", "editor", "viewer"]
ROLES: tuple[Role, ...] = ("owner", "editor", "viewer")


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: ProjectSlug
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)


MAX_RETENTION_DAYS = 3650


class ProjectUpdate(BaseModel):
    """Fields left out stay as they are; ``trace_retention_days: null`` returns to the deployment's default."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    trace_retention_days: int | None = Field(
        None, ge=1, le=MAX_RETENTION_DAYS, description="Days its traces are kept; null: the deployment's default"
    )


class Project(BaseModel):
    slug: str
    name: str
    description: str
    created_by: str
    created_at: datetime
    trace_retention_days: int | None = Field(None, description="null: the deployment's default")
    role: Role | None = Field(None, description="The caller's role in this project")


class Member(BaseModel):
    user: str
    role: Role


class SetMember(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
