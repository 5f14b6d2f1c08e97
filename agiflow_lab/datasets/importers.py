"""Parsing uploads into dataset items, chunk by chunk, with per-row errors. Pure: no database, no I/O.

A parser is fed the body as it arrives (``feed(bytes)``) and hands back the complete rows so far, so a
100k-row upload is never held whole. Rules, kept simple so a result never surprises:

- CSV: the first record is the header. Every value stays the string in the file, including ones that
  look like numbers or JSON. Rows are numbered from 1 after the header; a problem with the header itself
  is reported as row 0 and stops the parse.
- JSONL: one JSON object per line, numbered by line. Without a mapping, a line with an ``input`` key is
  taken as ``{id?, input, expected?, metadata?}``; any other line goes through the default mapping.
- Mapping (both formats): ``id`` defaults to the column ``id`` and ``expected`` to ``expected`` when
  present; ``input`` defaults to every column not mapped elsewhere; ``metadata`` to none. A column the
  mapping names explicitly must be present in every row.
- Blank lines are errors ("empty row"), except at the very end of the body. So are duplicate ids in one
  upload, ids that are not a non-empty string or a whole number, and what ``core.json_input`` refuses in
  any request (NaN, NUL characters, lone surrogates, nesting beyond the depth limit), named by its path in
  the row (``input.q``).
"""

from __future__ import annotations

import codecs
import csv
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agiflow_lab.core import json_input
from agiflow_lab.datasets.models import MAX_ITEM_ID, ColumnMapping, ItemIn
from agiflow_lab.errors import ValidationFailed

MAX_REPORTED_ERRORS = 100
MAX_RECORD_BYTES = 16 * 1024 * 1024
ImportFormat = Literal["csv", "jsonl"]
STRUCTURED_KEYS = frozenset({"id", "input", "expected", "metadata"})


@dataclass
class ParsedItem:
    row: int
    item_id: str | None
    input: dict[str, Any]
    expected: Any
    metadata: dict[str, Any]


@dataclass(frozen=True)
class EncodedItem:
    """An item ready for the database: JSON text for each jsonb column, an id generated if none was given."""

    row: int
    item_id: str
    input: str
    expected: str | None
    metadata: str


@dataclass
class RowErrors:
    """The first ``MAX_REPORTED_ERRORS`` problems, and how many rows had any."""

    items: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    _last_row: int = -1

    def add(self, row: int, message: str, field: str | None = None) -> None:
        if row != self._last_row:
            self.rows += 1
            self._last_row = row
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append({"row": row, **({"field": field} if field is not None else {}), "message": message})

    def __bool__(self) -> bool:
        return self.rows > 0

    def raise_if_any(self) -> None:
        if self.rows:
            noun = "row has" if self.rows == 1 else "rows have"
            rows = sorted(self.items, key=lambda e: int(e["row"]))  # encoding errors arrive after parse errors
            first = rows[0]
            raise ValidationFailed(
                f"{self.rows} {noun} errors; nothing was written (first: row {first['row']}: {first['message']})",
                {"rows": rows, "row_count": self.rows},
            )


class IdTracker:
    """Refuses an id seen earlier in the same upload (only ids are kept, not rows)."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def check(self, item_id: str | None, row: int, errors: RowErrors) -> bool:
        if item_id is None:
            return True
        first = self._seen.setdefault(item_id, row)
        if first != row:
            errors.add(row, f"duplicate id {item_id!r} (first used in row {first})", "id")
            return False
        return True


class Parser(Protocol):
    errors: RowErrors

    def feed(self, chunk: bytes) -> list[ParsedItem]: ...

    def close(self) -> list[ParsedItem]: ...


# --- mapping --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedMapping:
    input: tuple[str, ...] | None  # None: every column not used elsewhere
    expected: str | None
    metadata: tuple[str, ...]
    id: str | None
    required: tuple[str, ...]  # columns the caller named explicitly

    @classmethod
    def of(cls, mapping: ColumnMapping | None) -> ResolvedMapping:
        mapping = mapping or ColumnMapping()
        given = mapping.model_fields_set
        named_id = mapping.id if "id" in given else None
        named_expected = mapping.expected if "expected" in given else None
        named = [*(mapping.input or ()), *mapping.metadata, *(c for c in (named_id, named_expected) if c)]
        # A default applies only to a column the caller did not put somewhere else.
        id_ = named_id if "id" in given else (None if "id" in named else "id")
        expected = named_expected if "expected" in given else (None if "expected" in named else "expected")
        return cls(
            input=None if mapping.input is None else tuple(mapping.input),
            expected=expected,
            metadata=tuple(mapping.metadata),
            id=id_,
            required=tuple(named),
        )

    def overlaps(self) -> list[str]:
        """Columns the caller mapped to two places at once."""
        return sorted({c for c in self.required if self.required.count(c) > 1})

    def taken(self) -> set[str]:
        """Columns that are not input unless listed there: the id, expected and metadata columns."""
        return {c for c in (self.id, self.expected, *self.metadata) if c}

    def apply(self, record: Mapping[str, Any], row: int, errors: RowErrors) -> ParsedItem | None:
        missing = [c for c in dict.fromkeys(self.required) if c not in record]
        for column in missing:
            errors.add(row, f"column {column!r} is missing", column)
        if missing:
            return None
        item_id = _item_id(record[self.id], row, errors) if self.id and self.id in record else None
        if self.id and self.id in record and item_id is None:
            return None
        taken = self.taken()
        columns = self.input if self.input is not None else [c for c in record if c not in taken]
        return ParsedItem(
            row=row,
            item_id=item_id,
            input={c: record[c] for c in columns},
            expected=record.get(self.expected) if self.expected else None,
            metadata={c: record[c] for c in self.metadata},
        )


def _item_id(value: Any, row: int, errors: RowErrors) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        errors.add(row, "id must be a string or a whole number", "id")
        return None
    if not value:
        errors.add(row, "id is empty", "id")
        return None
    if len(value) > MAX_ITEM_ID:
        errors.add(row, f"id is longer than {MAX_ITEM_ID} characters", "id")
        return None
    return value


# --- JSONL ----------------------------------------------------------------------------------------


def _unsafe(errors: RowErrors, row: int, exc: json_input.UnsafeJson) -> None:
    errors.add(row, exc.problem.message, exc.problem.path or None)


class JsonlParser:
    def __init__(self, mapping: ColumnMapping | None, max_depth: int = json_input.DEFAULT_MAX_DEPTH) -> None:
        self.errors = RowErrors()
        self.max_depth = max_depth
        self.mapping = ResolvedMapping.of(mapping)
        self.structured_default = mapping is None
        self.ids = IdTracker()
        self._buffer = bytearray()
        self._line = 0
        self._blank: list[int] = []  # blank lines not yet known to be in the middle of the body
        self._stopped = False
        if overlaps := self.mapping.overlaps():
            self.errors.add(0, f"columns mapped twice: {', '.join(overlaps)}", "mapping")
            self._stopped = True

    def feed(self, chunk: bytes) -> list[ParsedItem]:
        if self._stopped:
            return []
        self._buffer += chunk
        out: list[ParsedItem] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            self._take(bytes(self._buffer[start:end]), out)
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > MAX_RECORD_BYTES:
            self.errors.add(self._line + 1, f"line is longer than {MAX_RECORD_BYTES} bytes")
            self._stopped = True
        return out

    def close(self) -> list[ParsedItem]:
        out: list[ParsedItem] = []
        if not self._stopped and self._buffer:
            self._take(bytes(self._buffer), out)
            self._buffer.clear()
        self._blank.clear()  # trailing blank lines are fine
        return out

    def _take(self, raw: bytes, out: list[ParsedItem]) -> None:
        self._line += 1
        if self._line == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            self._blank.append(self._line)
            return
        for line in self._blank:
            self.errors.add(line, "empty row")
        self._blank.clear()
        row = self._line
        try:
            value = json_input.loads(raw, max_depth=self.max_depth)
        except json_input.UnsafeJson as exc:
            return _unsafe(self.errors, row, exc)
        except (ValueError, UnicodeDecodeError) as exc:
            self.errors.add(row, f"not valid JSON: {exc}")
            return
        if not isinstance(value, dict):
            self.errors.add(row, f"a line must be a JSON object, not {_json_type(value)}")
            return
        if not value:
            self.errors.add(row, "empty row")
            return
        if self.structured_default and "input" in value:
            item = self._structured(value, row)
        else:
            item = self.mapping.apply(value, row, self.errors)
        if item is not None and self.ids.check(item.item_id, row, self.errors):
            out.append(item)

    def _structured(self, value: dict[str, Any], row: int) -> ParsedItem | None:
        unknown = sorted(set(value) - STRUCTURED_KEYS)
        if unknown:
            self.errors.add(row, f"unknown keys {unknown}: a line with 'input' may only hold {sorted(STRUCTURED_KEYS)}")
            return None
        if not isinstance(value["input"], dict):
            self.errors.add(row, f"input must be an object, not {_json_type(value['input'])}", "input")
            return None
        metadata = value.get("metadata")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            self.errors.add(row, f"metadata must be an object, not {_json_type(metadata)}", "metadata")
            return None
        item_id = None
        if value.get("id") is not None:
            item_id = _item_id(value["id"], row, self.errors)
            if item_id is None:
                return None
        return ParsedItem(row, item_id, value["input"], value.get("expected"), metadata)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# --- CSV ------------------------------------------------------------------------------------------


class CsvParser:
    def __init__(self, mapping: ColumnMapping | None) -> None:
        self.errors = RowErrors()
        self.mapping = ResolvedMapping.of(mapping)
        self.ids = IdTracker()
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._text = ""
        self._pending: list[str] = []  # physical lines of the record being read
        self._pending_size = 0
        self._quotes = 0
        self._header: list[str] | None = None
        self._row = 0
        self._blank: list[int] = []
        self._stopped = False

    def feed(self, chunk: bytes) -> list[ParsedItem]:
        if self._stopped:
            return []
        try:
            self._text += self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            self._fatal(f"the body is not UTF-8: {exc.reason}")
            return []
        out: list[ParsedItem] = []
        lines = self._text.split("\n")
        self._text = lines.pop()
        for line in lines:
            self._line(line + "\n", out)
            if self._stopped:
                return out
        if self._pending_size + len(self._text) > MAX_RECORD_BYTES:
            self._fatal(f"a record is longer than {MAX_RECORD_BYTES} bytes (an unclosed quote?)")
        return out

    def close(self) -> list[ParsedItem]:
        out: list[ParsedItem] = []
        if self._stopped:
            return out
        try:
            self._text += self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            self._fatal(f"the body is not UTF-8: {exc.reason}")
            return out
        if self._text:
            self._line(self._text, out)
            self._text = ""
        if self._pending:
            self._fatal("a quoted field is not closed before the end of the body")
        elif self._header is None:
            self.errors.add(0, "the body is empty: a CSV upload needs a header row")
        self._blank.clear()
        return out

    def _fatal(self, message: str) -> None:
        self.errors.add(self._row + 1 if self._header is not None else 0, message)
        self._stopped = True

    def _line(self, line: str, out: list[ParsedItem]) -> None:
        self._pending.append(line)
        self._pending_size += len(line)
        self._quotes += line.count('"')
        if self._quotes % 2:
            return  # inside a quoted field that spans lines
        lines, self._pending, self._pending_size, self._quotes = self._pending, [], 0, 0
        fields: list[str] | None
        error = ""
        try:
            fields = next(csv.reader(lines, strict=True), [])
        except csv.Error as exc:
            fields, error = None, str(exc)
        if self._header is None:
            self._set_header(fields, error)
            return
        self._row += 1
        if fields is not None and not any(fields):
            self._blank.append(self._row)
            return
        for row in self._blank:
            self.errors.add(row, "empty row")
        self._blank.clear()
        if fields is None:
            self.errors.add(self._row, f"not valid CSV: {error}")
            return
        if len(fields) != len(self._header):
            self.errors.add(self._row, f"row has {len(fields)} fields; the header has {len(self._header)}")
            return
        record = dict(zip(self._header, fields, strict=True))
        try:
            json_input.check(record)
        except json_input.UnsafeJson as exc:
            return _unsafe(self.errors, self._row, exc)
        item = self.mapping.apply(record, self._row, self.errors)
        if item is not None and self.ids.check(item.item_id, self._row, self.errors):
            out.append(item)

    def _set_header(self, fields: list[str] | None, error: str) -> None:
        if fields is None:
            return self._fatal(f"the header is not valid CSV: {error}")
        if not any(fields):
            return self._fatal("the header row is empty")
        if "" in fields:
            return self._fatal(f"header column {fields.index('') + 1} has no name")
        duplicates = sorted({f for f in fields if fields.count(f) > 1})
        if duplicates:
            return self._fatal(f"the header repeats columns: {', '.join(duplicates)}")
        try:
            json_input.check(fields)
        except json_input.UnsafeJson as exc:
            return self._fatal(f"header column {int(exc.problem.path) + 1} {exc.problem.message}")
        for column in self.mapping.required:
            if column not in fields:
                self.errors.add(0, f"column {column!r} is not in the header", column)
        if overlaps := self.mapping.overlaps():
            self.errors.add(0, f"columns mapped twice: {', '.join(overlaps)}", "mapping")
        if self.mapping.input is None and not set(fields) - self.mapping.taken():
            self.errors.add(0, "no column is left for input", "input")
        if self.errors:
            self._stopped = True
            return None
        self._header = fields
        return None


def parser_for(
    fmt: ImportFormat, mapping: ColumnMapping | None, max_depth: int = json_input.DEFAULT_MAX_DEPTH
) -> Parser:
    return CsvParser(mapping) if fmt == "csv" else JsonlParser(mapping, max_depth)


def parse_all(fmt: ImportFormat, chunks: Iterable[bytes], mapping: ColumnMapping | None = None) -> list[ParsedItem]:
    """Parse a whole body at once (for tests and small inputs); raises ``ValidationFailed`` on any row error."""
    parser = parser_for(fmt, mapping)
    items = [item for chunk in chunks for item in parser.feed(chunk)] + parser.close()
    parser.errors.raise_if_any()
    return items


# --- JSON API items and encoding ------------------------------------------------------------------


def from_models(items: Iterable[ItemIn], errors: RowErrors) -> Iterator[ParsedItem]:
    """Items from a JSON request body, numbered from 1 like upload rows, duplicates refused."""
    ids = IdTracker()
    for row, item in enumerate(items, start=1):
        if ids.check(item.id, row, errors):
            yield ParsedItem(row, item.id, item.input, item.expected, item.metadata)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode(item: ParsedItem, errors: RowErrors) -> EncodedItem | None:
    """JSON text for the database, or None after recording why the row cannot be stored. Values were checked
    where they were parsed (``core.json_input``: the request body, the JSONL line, the CSV record)."""
    item_id = item.item_id if item.item_id is not None else uuid.uuid4().hex
    try:
        input_ = _json_text(item.input)
        expected = None if item.expected is None else _json_text(item.expected)
        metadata = _json_text(item.metadata)
    except ValueError as exc:
        errors.add(item.row, f"value cannot be stored: {exc}")
        return None
    return EncodedItem(item.row, item_id, input_, expected, metadata)
