"""The datasets' rules.

Every change (create with items, append, replace, delete, import) is one transaction that writes one new
immutable version; versions are numbered without gaps because the writer holds the dataset's row lock
while it numbers and applies. Version 0 is the empty dataset every dataset starts from. An upload is
all-or-nothing: any row error and nothing is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from typing import Any

import psycopg

from agiflow_lab.audit import store as audit
from agiflow_lab.core.actor import Actor
from agiflow_lab.core.json_input import DEFAULT_MAX_DEPTH
from agiflow_lab.core.paging import Cursor, KeyInt, KeyText, Page, check_limit
from agiflow_lab.datasets import store
from agiflow_lab.datasets.importers import (
    EncodedItem,
    ImportFormat,
    ParsedItem,
    Parser,
    RowErrors,
    encode,
    from_models,
    parser_for,
)
from agiflow_lab.datasets.models import (
    MAX_PAGE,
    NAME_PATTERN,
    ColumnMapping,
    Dataset,
    DatasetCreate,
    DatasetItem,
    DatasetRef,
    DatasetVersion,
    ItemsWrite,
    WriteMode,
)
from agiflow_lab.db.database import Conn, Database
from agiflow_lab.errors import Conflict, InvalidInput, NotFound
from agiflow_lab.projects.service import ProjectService

log = logging.getLogger(__name__)

BATCH = 1000  # rows per COPY into the staging table
NAME_CURSOR = Cursor[str](KeyText)  # datasets by name
VERSION_CURSOR = Cursor[int](KeyInt)  # versions, newest first
ITEMS_CURSOR = Cursor[tuple[int, int]](tuple[KeyInt, KeyInt])  # (pinned version, last ordinal)


def _no_nul(field: str, text: str) -> None:
    if "\x00" in text:
        raise InvalidInput(f"{field} contains a NUL character", {"field": field})


def _missing(name: str) -> NotFound:
    return NotFound(f"dataset {name!r} does not exist", {"dataset": name})


def _check_name(name: str) -> None:
    """A name no dataset can have is simply not found (and never reaches SQL, which refuses NUL characters)."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise _missing(name)


def _item(row: dict[str, Any]) -> DatasetItem:
    return DatasetItem(id=row["item_id"], input=row["input"], expected=row["expected"], metadata=row["metadata"])


class DatasetService:
    def __init__(self, db: Database, projects: ProjectService, *, max_json_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.db = db
        self.projects = projects
        self.max_json_depth = max_json_depth  # for imported rows, as for request bodies

    # --- writes -----------------------------------------------------------------------------

    async def create(self, actor: Actor, project: str, body: DatasetCreate) -> Dataset:
        _no_nul("description", body.description)
        _no_nul("message", body.message)
        encoded = _encode_models(body.items or [])
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            dataset_id = await store.insert_dataset(conn, project_id, body.name, body.description, actor.principal)
            if dataset_id is None:
                raise Conflict(
                    f"dataset {body.name!r} already exists; add items to it instead",
                    {"field": "name", "name": body.name},
                )
            await audit.record(
                conn, project_id=project_id, actor=actor, action="dataset.create", resource_type="dataset",
                resource_id=body.name, after={"description": body.description},
            )  # fmt: skip
            if body.items:
                await store.create_stage(conn)
                await store.stage(conn, encoded)
                await self._commit_version(
                    conn, actor, project_id, body.name, "append", body.message, action="dataset.items.append"
                )
        return await self.get(project, body.name)

    async def write_items(self, actor: Actor, project: str, name: str, body: ItemsWrite) -> DatasetVersion:
        _no_nul("message", body.message)
        encoded = _encode_models(body.items)
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            await self._require(conn, project_id, name)
            await store.create_stage(conn)
            await store.stage(conn, encoded)
            return await self._commit_version(
                conn, actor, project_id, name, body.mode, body.message, action=f"dataset.items.{body.mode}"
            )

    async def delete_item(
        self, actor: Actor, project: str, name: str, item_id: str, message: str = ""
    ) -> DatasetVersion:
        _no_nul("message", message)
        project_id = await self.projects.resolve_id(project)
        async with self.db.transaction() as conn:
            dataset = await self._lock(conn, project_id, name)
            version = dataset["latest_version"] + 1
            if "\x00" in item_id or not await store.close_item(conn, dataset["id"], item_id, version):
                raise NotFound(f"dataset {name!r} has no item {item_id!r}", {"dataset": name, "item": item_id})
            count = await store.live_count(conn, dataset["id"])
            return await self._record_version(
                conn, actor, project_id, name, dataset, version, count, message,
                action="dataset.items.delete", changes={"removed": 1, "item": item_id},
            )  # fmt: skip

    async def begin_import(
        self,
        actor: Actor,
        project: str,
        name: str,
        *,
        fmt: ImportFormat,
        mode: WriteMode,
        mapping: ColumnMapping | None,
        message: str = "",
    ) -> ImportSession:
        """Open a streamed upload into an existing dataset; feed it the body, then ``finish()`` it.

        The rows are staged in the upload's own transaction as they arrive; the dataset is locked only
        for the moment the staged rows become a version, so a long upload does not hold up other writers.
        """
        _no_nul("message", message)
        _check_name(name)
        project_id = await self.projects.resolve_id(project)
        stack = AsyncExitStack()
        try:
            conn = await stack.enter_async_context(self.db.transaction())
            dataset = await store.find(conn, project_id, name)
            if dataset is None:
                raise NotFound(f"dataset {name!r} does not exist; create it first", {"dataset": name})
            if dataset["archived"]:
                raise Conflict(f"dataset {name!r} is archived", {"dataset": name})
            await store.create_stage(conn)
        except BaseException:
            await stack.aclose()
            raise
        return ImportSession(
            self, conn, stack, parser_for(fmt, mapping, self.max_json_depth), actor, project_id, name, mode, message
        )

    async def _commit_version(
        self, conn: Conn, actor: Actor, project_id: int, name: str, mode: WriteMode, message: str, *, action: str
    ) -> DatasetVersion:
        """Lock the dataset, turn the staged rows into its next version, record it."""
        dataset = await self._lock(conn, project_id, name)
        version = dataset["latest_version"] + 1
        changes = await store.apply_stage(
            conn, dataset["id"], version, dataset["next_ordinal"], replace=mode == "replace"
        )
        count = changes.pop("item_count")
        return await self._record_version(
            conn, actor, project_id, name, dataset, version, count, message, action=action,
            changes={**changes, "mode": mode},
        )  # fmt: skip

    async def _record_version(
        self,
        conn: Conn,
        actor: Actor,
        project_id: int,
        name: str,
        dataset: dict[str, Any],
        version: int,
        item_count: int,
        message: str,
        *,
        action: str,
        changes: dict[str, Any],
    ) -> DatasetVersion:
        previous = await store.get_version(conn, dataset["id"], dataset["latest_version"])
        before_count = 0 if previous is None else int(previous["item_count"])
        await store.insert_version(
            conn, dataset["id"], version, item_count, int(changes.get("added", 0)), message, actor.principal
        )
        await audit.record(
            conn, project_id=project_id, actor=actor, action=action, resource_type="dataset",
            resource_id=f"{name}@{version}",
            before={"version": dataset["latest_version"], "item_count": before_count},
            after={"version": version, "item_count": item_count, **changes},
        )  # fmt: skip
        row = await store.get_version(conn, dataset["id"], version)
        assert row is not None
        return DatasetVersion.model_validate(row)

    # --- reads ------------------------------------------------------------------------------

    async def get(self, project: str, name: str) -> Dataset:
        _check_name(name)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            row = await store.summary(conn, project_id, name)
        if row is None:
            raise _missing(name)
        return Dataset.model_validate(row)

    async def search(
        self,
        project: str,
        *,
        search: str | None = None,
        include_archived: bool = False,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Dataset]:
        check_limit(limit)
        after = NAME_CURSOR.decode(cursor)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            rows = await store.search(
                conn, project_id, text=search, include_archived=include_archived, after_name=after, limit=limit + 1
            )
        items = [Dataset.model_validate(row) for row in rows[:limit]]
        return Page[Dataset](items=items, next_cursor=NAME_CURSOR.next(rows, limit, lambda r: r["name"]))

    async def versions(
        self, project: str, name: str, *, cursor: str | None = None, limit: int = 50
    ) -> Page[DatasetVersion]:
        check_limit(limit)
        before = VERSION_CURSOR.decode(cursor)
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            dataset = await self._require(conn, project_id, name)
            rows = await store.list_versions(conn, dataset["id"], before, limit + 1)
        items = [DatasetVersion.model_validate(row) for row in rows[:limit]]
        return Page[DatasetVersion](items=items, next_cursor=VERSION_CURSOR.next(rows, limit, lambda r: r["version"]))

    async def resolve(self, project: str, name: str, version: int | None) -> DatasetRef:
        """Pin a version (default: the latest). Version 0, the empty dataset, resolves too: callers decide."""
        project_id = await self.projects.resolve_id(project)
        async with self.db.connection() as conn:
            dataset = await self._require(conn, project_id, name)
            latest = int(dataset["latest_version"])
            pinned = latest if version is None else version
            if pinned < 0 or pinned > latest:
                raise NotFound(
                    f"dataset {name!r} has no version {pinned} (latest is {latest})",
                    {"dataset": name, "version": pinned, "field": "version"},
                )
            row = await store.get_version(conn, dataset["id"], pinned) if pinned else None
        count = 0 if row is None else int(row["item_count"])
        return DatasetRef(dataset_id=int(dataset["id"]), project=project, name=name, version=pinned, item_count=count)

    async def items(
        self, project: str, name: str, *, version: int | None = None, cursor: str | None = None, limit: int = 100
    ) -> Page[DatasetItem]:
        """A page of one version's items. The cursor pins the version, so paging on while others write is safe."""
        check_limit(limit, MAX_PAGE)
        after = 0
        if (position := ITEMS_CURSOR.decode(cursor)) is not None:
            pinned, after = position
            if version is not None and version != pinned:
                raise InvalidInput(
                    f"the cursor belongs to version {pinned}, not {version}", {"field": "version", "version": version}
                )
            version = pinned
        ref = await self.resolve(project, name, version)
        async with self.db.connection() as conn:
            rows = await store.items_page(conn, ref.dataset_id, ref.version, after_ordinal=after, limit=limit + 1)
        items = [_item(row) for row in rows[:limit]]
        next_cursor = ITEMS_CURSOR.next(rows, limit, lambda r: (ref.version, r["ordinal"]))
        return Page[DatasetItem](items=items, next_cursor=next_cursor)

    async def export_jsonl(self, ref: DatasetRef, page_size: int = MAX_PAGE) -> AsyncIterator[bytes]:
        """The version's items as JSONL, one chunk per page; a version never changes, so pages need no snapshot."""
        after = 0
        while True:
            async with self.db.connection() as conn:
                rows = await store.items_page(conn, ref.dataset_id, ref.version, after_ordinal=after, limit=page_size)
            if not rows:
                return
            yield "".join(
                json.dumps(
                    {"id": r["item_id"], "input": r["input"], "expected": r["expected"], "metadata": r["metadata"]},
                    ensure_ascii=False,
                )
                + "\n"
                for r in rows
            ).encode()
            if len(rows) < page_size:
                return
            after = int(rows[-1]["ordinal"])

    # --- helpers ----------------------------------------------------------------------------

    @staticmethod
    async def _require(conn: Conn, project_id: int, name: str) -> dict[str, Any]:
        _check_name(name)
        dataset = await store.find(conn, project_id, name)
        if dataset is None:
            raise _missing(name)
        return dataset

    @staticmethod
    async def _lock(conn: Conn, project_id: int, name: str) -> dict[str, Any]:
        _check_name(name)
        dataset = await store.find(conn, project_id, name, lock=True)
        if dataset is None:
            raise _missing(name)
        if dataset["archived"]:
            raise Conflict(f"dataset {name!r} is archived", {"dataset": name})
        return dataset


def _encode_all(items: Iterable[ParsedItem], errors: RowErrors) -> list[EncodedItem]:
    encoded = [e for item in items if (e := encode(item, errors)) is not None]
    errors.raise_if_any()
    return encoded


def _encode_models(items: Iterable[Any]) -> list[EncodedItem]:
    errors = RowErrors()
    return _encode_all(from_models(items, errors), errors)


class ImportSession:
    """One streamed upload: rows are parsed and staged as chunks arrive, and become a version at ``finish``.

    ``feed`` never raises (tornado cannot answer from inside ``data_received``): a failure is kept and
    reported by ``finish``. ``abort`` rolls back; it is safe to call at any time, more than once.
    """

    def __init__(
        self,
        service: DatasetService,
        conn: Conn,
        stack: AsyncExitStack,
        parser: Parser,
        actor: Actor,
        project_id: int,
        name: str,
        mode: WriteMode,
        message: str,
    ) -> None:
        self._service = service
        self._conn = conn
        self._stack: AsyncExitStack | None = stack
        self._parser = parser
        self._actor = actor
        self._project_id = project_id
        self._name = name
        self._mode = mode
        self._message = message
        self._batch: list[EncodedItem] = []
        self._failure: BaseException | None = None
        self._lock = asyncio.Lock()

    @property
    def closed(self) -> bool:
        return self._stack is None

    async def feed(self, chunk: bytes) -> None:
        async with self._lock:
            if self._stack is None or self._failure is not None:
                return
            try:
                await self._take(self._parser.feed(chunk))
            except Exception as exc:  # kept for finish(): the body keeps arriving, the answer comes later
                self._failure = exc

    async def finish(self) -> DatasetVersion:
        """Commit the upload as the dataset's next version, or roll back and raise."""
        async with self._lock:
            if self._stack is None:
                raise Conflict("this upload was already closed")
            try:
                if self._failure is not None:
                    raise self._failure
                await self._take(self._parser.close(), final=True)
                self._parser.errors.raise_if_any()
                version = await self._service._commit_version(
                    self._conn, self._actor, self._project_id, self._name, self._mode, self._message,
                    action="dataset.import",
                )  # fmt: skip
            except BaseException as exc:
                await self._close(exc)
                raise
            await self._close(None)
            return version

    async def abort(self) -> None:
        async with self._lock:
            try:
                await self._close(psycopg.Rollback())
            except Exception:  # the connection died with the client; the pool discards it
                log.warning("rolling back an abandoned dataset upload failed", exc_info=True)

    async def _take(self, items: list[ParsedItem], final: bool = False) -> None:
        errors = self._parser.errors
        for item in items:
            encoded = encode(item, errors)
            if encoded is not None and not errors:
                self._batch.append(encoded)
        if errors:
            self._batch.clear()  # nothing will be written; stop spending the database's time
            return
        if len(self._batch) >= BATCH or (final and self._batch):
            batch, self._batch = self._batch, []
            await store.stage(self._conn, batch)

    async def _close(self, exc: BaseException | None) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        if exc is None:
            await stack.aclose()
        else:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)
