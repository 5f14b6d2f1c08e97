"""``DatasetView``: a dataset version's items a page at a time, with a text filter."""

from __future__ import annotations

import json
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal

import traitlets as t
from typing_extensions import TypedDict

from agiflow_lab.datasets.models import DatasetItem
from agiflow_lab.widgets._base import STATIC, Widget, messages_of, rows
from agiflow_lab.widgets._session import Session

if TYPE_CHECKING:
    from agiflow_lab.sdk.client import Client

FETCH_PAGE = 200


class ItemRow(TypedDict):
    id: str
    input: str  # JSON text
    expected: str  # JSON text ("" when none)
    metadata: str  # JSON text


class Page(TypedDict):
    type: Literal["page"]
    page: int


class Filter(TypedDict):
    type: Literal["filter"]
    text: str


class Version(TypedDict):
    type: Literal["version"]
    version: int


DatasetMessage = Page | Filter | Version


class DatasetView(Widget[DatasetMessage]):
    """``DatasetView(client, "qa")``: the latest version's items, ``page_size`` at a time. The filter keeps the
    items whose id, input, expected or metadata contain the text (case-insensitive), read through the API's
    pages in the kernel: the API has no search over items."""

    _esm = STATIC / "dataset_view.js"
    messages = messages_of(Page, Filter, Version)

    name = t.Unicode("").tag(sync=True)
    version = t.Int(0).tag(sync=True)
    versions = t.List(t.Int()).tag(sync=True)  # newest first
    item_count = t.Int(0).tag(sync=True)  # in the version shown
    page = t.Int(0).tag(sync=True)
    page_size = t.Int(20).tag(sync=True)
    filter = t.Unicode("").tag(sync=True)
    items: t.List[ItemRow] = rows(ItemRow)
    has_more = t.Bool(False).tag(sync=True)

    def __init__(self, client: Client | Session, name: str, *, page_size: int = 20) -> None:
        super().__init__(name=name, page_size=page_size)
        self._dataset = Session.of(client).datasets.get(name)
        found = self._dataset.versions()
        self.versions = [v.version for v in found]
        self._counts = {v.version: v.item_count for v in found}
        self.show(self._dataset.version, 0, "")

    def dispatch(self, message: DatasetMessage) -> None:
        if message["type"] == "page":
            self.show(self.version, message["page"], self.filter)
        elif message["type"] == "filter":
            self.show(self.version, 0, message["text"])
        elif message["type"] == "version":
            self.show(message["version"], 0, self.filter)

    def show(self, version: int, page: int, text: str) -> None:
        needle = text.strip().lower()
        found: Any = self._dataset.items(version or None, page_size=FETCH_PAGE) if version else iter(())
        if needle:
            found = (i for i in found if needle in _haystack(i))
        start = max(0, page) * self.page_size
        window = [_row(i) for i in islice(found, start, start + self.page_size + 1)]
        with self.hold_trait_notifications():
            self.version, self.page, self.filter = version, max(0, page), text
            self.item_count = self._counts.get(version, 0)
            self.items = window[: self.page_size]
            self.has_more = len(window) > self.page_size


def _haystack(item: DatasetItem) -> str:
    return " ".join([item.id, _json(item.input), _json(item.expected), _json(item.metadata)]).lower()


def _row(item: DatasetItem) -> ItemRow:
    expected = "" if item.expected is None else _json(item.expected)
    return ItemRow(id=item.id, input=_json(item.input), expected=expected, metadata=_json(item.metadata))


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
