"""``client.datasets``: create, upload to, version, page through and export datasets.

Uploads always go through the streamed import endpoint: a DataFrame or a list of dicts is turned into
JSONL a thousand rows at a time as the request body is sent, and a file is sent in chunks as read, so
no upload is ever held whole in memory as one string.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agiflow_lab.core.paging import MAX_LIMIT
from agiflow_lab.datasets.models import MAX_PAGE, ColumnMapping, DatasetItem, DatasetVersion, WriteMode
from agiflow_lab.datasets.models import Dataset as DatasetInfo
from agiflow_lab.sdk.transport import Transport, segment

if TYPE_CHECKING:
    import pandas as pd

    from agiflow_lab.widgets._display import Bundle

ROWS_PER_CHUNK = 1000
FILE_CHUNK = 1 << 20
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
Data = Any  # a pandas DataFrame, an iterable of dicts, or a path to a .csv / .jsonl file
MappingArg = ColumnMapping | Mapping[str, Any] | None


def _frame_chunks(frame: pd.DataFrame) -> Iterator[bytes]:
    # pandas writes the JSON (NumPy scalars, NaN → null, timestamps as ISO text) a slice at a time.
    for start in range(0, len(frame), ROWS_PER_CHUNK):
        part = frame.iloc[start : start + ROWS_PER_CHUNK]
        text = part.to_json(orient="records", lines=True, date_format="iso", force_ascii=False)
        if text:
            yield (text if text.endswith("\n") else text + "\n").encode()


def _records_chunks(records: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    lines: list[str] = []
    for record in records:
        lines.append(json.dumps(dict(record), ensure_ascii=False, default=str))
        if len(lines) >= ROWS_PER_CHUNK:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(FILE_CHUNK):
            yield chunk


def _body(data: Data) -> tuple[Literal["csv", "jsonl"], Iterator[bytes]]:
    """The upload format and a generator of its bytes."""
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return "csv", _file_chunks(path)
        if suffix in (".jsonl", ".ndjson"):
            return "jsonl", _file_chunks(path)
        raise ValueError(f"{path}: upload a .csv or .jsonl file (or a DataFrame / a list of dicts)")
    if hasattr(data, "to_json") and hasattr(data, "iloc"):
        return "jsonl", _frame_chunks(data)
    if isinstance(data, Mapping):
        raise TypeError("pass a list of dicts (one per item), not a single dict")
    return "jsonl", _records_chunks(data)


def _mapping_json(mapping: MappingArg) -> str | None:
    if mapping is None:
        return None
    if isinstance(mapping, ColumnMapping):
        return mapping.model_dump_json(exclude_unset=True)
    return json.dumps(dict(mapping))


class Dataset:
    """A dataset on the server. ``info`` is what the server said last; writes refresh it."""

    def __init__(self, datasets: Datasets, info: DatasetInfo) -> None:
        self._datasets = datasets
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def version(self) -> int:
        """The latest version when last fetched (0: empty)."""
        return self.info.latest_version

    @property
    def item_count(self) -> int:
        return self.info.item_count

    def refresh(self) -> Dataset:
        self.info = self._datasets._info(self.name)
        return self

    def upload(
        self, data: Data, mode: WriteMode = "append", mapping: MappingArg = None, *, message: str = ""
    ) -> DatasetVersion:
        """Add (``append``: new ids added, known ids updated) or ``replace`` the items; returns the new version.

        A row error anywhere raises ``ValidationFailed`` whose ``details["rows"]`` lists the rows; then
        nothing was written.
        """
        return self._send(*_body(data), mode, mapping, message)

    def _send(
        self, fmt: Literal["csv", "jsonl"], chunks: Iterator[bytes], mode: WriteMode, mapping: MappingArg, message: str
    ) -> DatasetVersion:
        answer = self._datasets._t.upload(
            self._datasets._base(self.name) + "/import",
            chunks,
            content_type=CONTENT_TYPES[fmt],
            params={"format": fmt, "mode": mode, "mapping": _mapping_json(mapping), "message": message or None},
        )
        version = DatasetVersion.model_validate(answer)
        self.refresh()
        return version

    def delete_item(self, item_id: str, *, message: str = "") -> DatasetVersion:
        path = f"{self._datasets._base(self.name)}/items/{segment(item_id)}"
        version = DatasetVersion.model_validate(
            self._datasets._t.request("DELETE", path, params={"message": message or None})
        )
        self.refresh()
        return version

    def versions(self) -> list[DatasetVersion]:
        """Every version, newest first."""
        path = self._datasets._base(self.name) + "/versions"
        return [DatasetVersion.model_validate(v) for v in self._datasets._t.items(path, page_size=MAX_LIMIT)]

    def items(self, version: int | None = None, *, page_size: int = MAX_PAGE) -> Iterator[DatasetItem]:
        """Every item of a version (default: the latest, pinned at the first page), fetched page by page."""
        # Sending ``version`` with every page is safe: the cursor pins the version it started on.
        path = self._datasets._base(self.name) + "/items"
        for item in self._datasets._t.items(path, {"version": version}, page_size=page_size):
            yield DatasetItem.model_validate(item)

    def export_lines(self, version: int | None = None) -> Iterator[dict[str, Any]]:
        """The version's items as the export streams them: ``{"id", "input", "expected", "metadata"}``."""
        path = self._datasets._base(self.name) + "/export"
        with self._datasets._t.stream(path, params={"version": version, "format": "jsonl"}) as response:
            for line in response.iter_lines():
                if line:
                    yield json.loads(line)

    def to_pandas(self, version: int | None = None) -> pd.DataFrame:
        """A DataFrame with columns ``id, input, expected, metadata`` (the latest version by default)."""
        import pandas as pd

        columns = ["id", "input", "expected", "metadata"]
        rows = [[line["id"], line["input"], line["expected"], line["metadata"]] for line in self.export_lines(version)]
        return pd.DataFrame(rows, columns=columns, dtype=object)  # keeps None as None, JSON values as they are

    def __repr__(self) -> str:
        return f"<Dataset {self.name!r} v{self.version} items={self.item_count}>"

    def _repr_html_(self) -> str:
        from agiflow_lab.widgets._html import dataset_html

        return dataset_html(self.info)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        from agiflow_lab.widgets._display import bundle

        def view() -> Any:
            from agiflow_lab.widgets import DatasetView
            from agiflow_lab.widgets._session import Session

            return DatasetView(Session.over(self._datasets._t, self._datasets.project), self.name)

        return bundle(self._repr_html_(), repr(self), view)


class Datasets:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _base(self, name: str | None = None) -> str:
        base = f"projects/{segment(self.project)}/datasets"
        return base if name is None else f"{base}/{segment(name)}"

    def _info(self, name: str) -> DatasetInfo:
        return DatasetInfo.model_validate(self._t.request("GET", self._base(name)))

    def create(
        self, name: str, data: Data = None, *, description: str = "", mapping: MappingArg = None, message: str = ""
    ) -> Dataset:
        """Create a dataset, and with ``data`` upload it as version 1 (a DataFrame, a list of dicts, or a path).

        The dataset is created first, then the data streamed into it; if the upload is refused, the
        dataset exists, empty, and ``get(name).upload(...)`` can try again.
        """
        body = None if data is None else _body(data)  # a missing file or bad argument fails before anything is created
        info = DatasetInfo.model_validate(
            self._t.request("POST", self._base(), json={"name": name, "description": description})
        )
        handle = Dataset(self, info)
        if body is not None:
            handle._send(*body, "append", mapping, message)
        return handle

    def get(self, name: str) -> Dataset:
        return Dataset(self, self._info(name))

    def list(self, *, search: str | None = None, page_size: int = MAX_LIMIT) -> Iterator[DatasetInfo]:
        for item in self._t.items(self._base(), {"search": search}, page_size=page_size):
            yield DatasetInfo.model_validate(item)
