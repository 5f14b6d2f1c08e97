from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tornado.web import authenticated

from agiflow_lab.core.paging import Page
from agiflow_lab.datasets.importers import ImportFormat
from agiflow_lab.datasets.models import (
    MAX_PAGE,
    ColumnMapping,
    Dataset,
    DatasetCreate,
    DatasetItem,
    DatasetVersion,
    ItemsWrite,
    WriteMode,
)
from agiflow_lab.datasets.service import ImportSession
from agiflow_lab.errors import Unauthenticated
from agiflow_lab.traces.to_dataset import SpansToDataset
from agiflow_lab_server.base import AgiflowHandler, authorized
from agiflow_lab_server.routing import operation

TAGS = ("datasets",)
_cleanups: set[asyncio.Task[None]] = set()  # keeps abandoned uploads' rollbacks alive until they finish


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    search: str | None = Field(None, max_length=200)
    include_archived: bool = False
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class ItemsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(None, ge=0, description="Default: the latest (or the version the cursor pins)")
    cursor: str | None = None
    limit: int = Field(100, ge=1, le=MAX_PAGE)


class DeleteQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field("", max_length=2000)


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: ImportFormat = "jsonl"
    mode: WriteMode = "append"
    mapping: str | None = Field(
        None, description='A ColumnMapping as JSON: {"input"?: [..], "expected"?: "..", "metadata"?: [..], "id"?: ".."}'
    )
    message: str = Field("", max_length=2000)

    @field_validator("mapping")
    @classmethod
    def _mapping_is_a_column_mapping(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ColumnMapping.model_validate_json(value)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ValueError(f"not a column mapping: {where + ': ' if where else ''}{first['msg']}") from None
        return value

    @property
    def column_mapping(self) -> ColumnMapping | None:
        return None if self.mapping is None else ColumnMapping.model_validate_json(self.mapping)


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(None, ge=0, description="Default: the latest")
    format: Literal["jsonl"] = "jsonl"


class DatasetBase(AgiflowHandler):
    auth_resource = "agiflow:datasets"


class DatasetsHandler(DatasetBase):
    @operation("List and search datasets", query=ListQuery, response=Page[Dataset], tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str) -> None:
        q = self.query(ListQuery)
        page = await self.platform.datasets.search(
            project, search=q.search, include_archived=q.include_archived, cursor=q.cursor, limit=q.limit
        )
        self.finish_json(page)

    @operation("Create a dataset, empty (version 0) or with items (version 1)", body=DatasetCreate, response=Dataset,
               status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str) -> None:
        body = self.parse(DatasetCreate)
        self.finish_json(await self.platform.datasets.create(self.actor, project, body), status=201)


class DatasetHandler(DatasetBase):
    @operation("A dataset with its latest version and item count", response=Dataset, tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        self.finish_json(await self.platform.datasets.get(project, name))


class VersionsHandler(DatasetBase):
    @operation("List versions, newest first", query=PageQuery, response=Page[DatasetVersion], tags=TAGS)
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        q = self.query(PageQuery)
        self.finish_json(await self.platform.datasets.versions(project, name, cursor=q.cursor, limit=q.limit))


class ItemsHandler(DatasetBase):
    @operation("A page of a version's items in their stable order", query=ItemsQuery, response=Page[DatasetItem],
               tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        q = self.query(ItemsQuery)
        page = await self.platform.datasets.items(project, name, version=q.version, cursor=q.cursor, limit=q.limit)
        self.finish_json(page)

    @operation("Append, update or replace items (up to 10,000; larger uploads use /import): a new version",
               body=ItemsWrite, response=DatasetVersion, status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        body = self.parse(ItemsWrite)
        self.finish_json(await self.platform.datasets.write_items(self.actor, project, name, body), status=201)


class FromSpansHandler(DatasetBase):
    @operation("Add stored spans as items (input: the prompt variables or the span's input; expected: its "
               "output; id: trace:span, so adding a span again updates its item): a new version. Needs read "
               "access to traces too; 404 naming the spans not stored, and nothing written then",
               body=SpansToDataset, response=DatasetVersion, status=201, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        body = self.parse(SpansToDataset)
        self.finish_json(await self.platform.span_items.add(self.actor, project, name, body), status=201)


class ItemHandler(DatasetBase):
    @operation("Delete an item: a new version without it (older versions keep it)", query=DeleteQuery,
               response=DatasetVersion, tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def delete(self, project: str, name: str, item_id: str) -> None:
        q = self.query(DeleteQuery)
        self.finish_json(await self.platform.datasets.delete_item(self.actor, project, name, item_id, q.message))


async def _allow(handler: AgiflowHandler, **path: str) -> None:
    return None


_check_access = authorized(_allow)


class ImportHandler(DatasetBase):
    """Uploads up to ``max_import_bytes``: the body (``text/csv`` or ``application/x-ndjson``) is parsed as it
    arrives, never held whole.

    Every handler streams its body (``body.py``), so ``prepare`` runs before the body is read: the caller is
    authenticated and authorized there, and a refused client's body is never parsed nor staged. A signed-in
    caller's refusal (403, 404, 422) is sent once the body has been drained unparsed; an anonymous caller's
    is sent at once, with ``Connection: close``: its body is not worth reading.
    """

    body_limit_setting = "max_import_bytes"
    _session: ImportSession | None = None

    async def prepare(self, **kwargs: Any) -> None:
        self._answer_now = True
        await super().prepare(**kwargs)
        if self.current_user is None:
            raise Unauthenticated("sign in to Jupyter or send 'Authorization: Bearer <project API key>'")
        self._answer_now = False
        await _check_access(self, **self.path_kwargs)
        q = self.query(ImportQuery)
        self._session = await self.platform.datasets.begin_import(
            self.actor, self.path_kwargs["project"], self.path_kwargs["name"],
            fmt=q.format, mode=q.mode, mapping=q.column_mapping, message=q.message,
        )  # fmt: skip

    async def receive(self, chunk: bytes) -> None:  # type: ignore[override]
        if self._session is not None:
            await self._session.feed(chunk)

    @operation("Import a CSV (text/csv) or JSONL (application/x-ndjson) body, streamed: a new version. "
               "Any row error: 422 listing the rows, nothing written", query=ImportQuery, response=DatasetVersion,
               status=201, tags=TAGS, raw_body={"text/csv": {"type": "string"},
                                                "application/x-ndjson": {"type": "string"}})  # fmt: skip
    @authenticated
    @authorized
    async def post(self, project: str, name: str) -> None:
        assert self._session is not None
        self.finish_json(await self._session.finish(), status=201)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._abandon()

    def on_finish(self) -> None:
        super().on_finish()
        self._abandon()

    def _abandon(self) -> None:
        if self._session is not None and not self._session.closed:
            task = asyncio.ensure_future(self._session.abort())
            _cleanups.add(task)
            task.add_done_callback(_cleanups.discard)


class ExportHandler(DatasetBase):
    @operation("Export a version as JSONL (application/x-ndjson), streamed page by page; one "
               '{"id", "input", "expected", "metadata"} object per line', query=ExportQuery, response=DatasetItem,
               content_type="application/x-ndjson", tags=TAGS)  # fmt: skip
    @authenticated
    @authorized
    async def get(self, project: str, name: str) -> None:
        q = self.query(ExportQuery)
        ref = await self.platform.datasets.resolve(project, name, q.version)
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Content-Disposition", f'attachment; filename="{name}-v{ref.version}.jsonl"')
        self.set_header("X-Agiflow-Dataset-Version", str(ref.version))
        async for chunk in self.platform.datasets.export_jsonl(ref):
            self.write(chunk)
            await self.flush()
        self.finish(set_content_type="application/x-ndjson")  # APIHandler would say JSON for an empty version
