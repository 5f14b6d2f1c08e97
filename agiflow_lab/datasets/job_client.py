"""The kernel's side of the job API for datasets: read a version of a dataset of the job's project and
write new datasets or versions, over HTTP to the worker that runs this job, with the job's token (see
``agiflow_lab_workers.job_api``). No database URL or secret key is ever in the kernel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from agiflow_lab.core.paging import Page
from agiflow_lab.datasets.job_wire import DATASETS_PATH, DatasetPin
from agiflow_lab.datasets.models import (
    MAX_JSON_ITEMS,
    MAX_PAGE,
    Dataset,
    DatasetCreate,
    DatasetItem,
    DatasetVersion,
    ItemIn,
    ItemsWrite,
)
from agiflow_lab.evals.job_client import JobApiError, job_api_from_env, job_api_http


class JobApiStatusError(JobApiError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DatasetsJobClient:
    def __init__(self, url: str, token: str, *, timeout: float = 600.0) -> None:
        self._http = job_api_http(url, token, timeout=timeout)

    @classmethod
    def from_env(cls) -> DatasetsJobClient:
        return cls(*job_api_from_env())

    async def __aenter__(self) -> DatasetsJobClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def pin(self, name: str, version: int | None = None) -> DatasetPin:
        """The version to read (default: the latest), resolved once so every page reads the same one."""
        params = {} if version is None else {"version": version}
        return DatasetPin.model_validate_json(await self._call("GET", f"/{quote(name, safe='')}", params=params))

    async def items(self, pin: DatasetPin, page_size: int = MAX_PAGE) -> AsyncIterator[DatasetItem]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"version": pin.version, "limit": page_size}
            if cursor is not None:
                params["cursor"] = cursor
            raw = await self._call("GET", f"/{quote(pin.name, safe='')}/items", params=params)
            page = Page[DatasetItem].model_validate_json(raw)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def write(self, name: str, items: list[ItemIn], *, message: str = "", description: str = "") -> DatasetPin:
        """``items`` as the dataset's new content: a new dataset, or a new version of an existing one that
        replaces its items. More than one request's worth is written as one version per chunk (the first
        creates or replaces, the others append); the version returned is the last."""
        chunks = [items[i : i + MAX_JSON_ITEMS] for i in range(0, len(items), MAX_JSON_ITEMS)] or [[]]
        try:
            body = DatasetCreate(name=name, description=description, items=chunks[0] or None, message=message)
            made = Dataset.model_validate_json(await self._call("POST", "", content=body.model_dump_json()))
            pin = DatasetPin(name=name, version=made.latest_version, item_count=made.item_count)
        except JobApiStatusError as exc:
            if exc.status != 409:  # 409: it exists already; its next version replaces its items
                raise
            pin = await self._write_items(name, ItemsWrite(items=chunks[0], mode="replace", message=message))
        for chunk in chunks[1:]:
            pin = await self._write_items(name, ItemsWrite(items=chunk, mode="append", message=message))
        return pin

    async def _write_items(self, name: str, body: ItemsWrite) -> DatasetPin:
        raw = await self._call("POST", f"/{quote(name, safe='')}/items", content=body.model_dump_json())
        version = DatasetVersion.model_validate_json(raw)
        return DatasetPin(name=name, version=version.version, item_count=version.item_count)

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> bytes:
        headers = {"Content-Type": "application/json"} if "content" in kwargs else None
        r = await self._http.request(method, DATASETS_PATH + path, headers=headers, **kwargs)
        if r.status_code >= 400:
            raise JobApiStatusError(
                f"job API {method} {DATASETS_PATH}{path}: {r.status_code} {r.text[:500]}", r.status_code
            )
        return r.content
