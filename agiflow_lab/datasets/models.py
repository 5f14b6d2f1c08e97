"""The datasets contract: request and response models, shared by the handlers, the OpenAPI document and the SDK."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The same naming rule as prompts: safe in a URL path segment and in a file name.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
DatasetName = Annotated[str, Field(pattern=NAME_PATTERN, description="Unique within the project")]
MAX_ITEM_ID = 256
ItemId = Annotated[str, Field(min_length=1, max_length=MAX_ITEM_ID, description="Stable per item")]
MAX_JSON_ITEMS = 10_000
MAX_PAGE = 1000
WriteMode = Literal["append", "replace"]


class ItemIn(BaseModel):
    """One item as a client sends it; without ``id`` the server generates one."""

    model_config = ConfigDict(extra="forbid")
    id: ItemId | None = None
    input: dict[str, Any]
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: DatasetName
    description: str = Field("", max_length=5000)
    items: list[ItemIn] | None = Field(
        None, max_length=MAX_JSON_ITEMS, description="Initial items: version 1. Without them the dataset starts empty"
    )
    message: str = Field("", max_length=2000)


class ItemsWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ItemIn] = Field(max_length=MAX_JSON_ITEMS, description="Larger uploads go through /import")
    mode: WriteMode = Field(
        "append",
        description="append: new ids are added, known ids updated; replace: items not sent are removed",
    )
    message: str = Field("", max_length=2000)


class ColumnMapping(BaseModel):
    """Which columns (CSV) or top-level keys (JSONL) become an item's parts.

    A field left out takes its default; ``expected`` or ``id`` given as null means "no such column".
    """

    model_config = ConfigDict(extra="forbid")
    input: list[str] | None = Field(None, min_length=1, description="Default: every column not mapped elsewhere")
    expected: str | None = Field(None, description="Default: the column 'expected', if there is one")
    metadata: list[str] = Field(default_factory=list)
    id: str | None = Field(None, description="Default: the column 'id', if there is one; else ids are generated")


class DatasetItem(BaseModel):
    id: str
    input: dict[str, Any]
    expected: Any = None
    metadata: dict[str, Any]


class DatasetVersion(BaseModel):
    name: str
    version: int
    item_count: int
    message: str
    created_by: str
    created_at: datetime


class Dataset(BaseModel):
    name: str
    description: str
    latest_version: int = Field(description="0: created empty, nothing written yet")
    item_count: int = Field(description="Items in the latest version")
    created_by: str
    created_at: datetime
    updated_at: datetime
    archived: bool


@dataclass(frozen=True)
class DatasetRef:
    """A resolved, pinned dataset version: what an evaluation run records and streams items from."""

    dataset_id: int
    project: str
    name: str
    version: int
    item_count: int
