"""Writing a batch of spans: the raw spans, then what they add to the trace summaries and minute rollups.

Built for the span writer's at-least-once delivery and for speed, since the database write is the
pipeline's ceiling:
- the batch is binary-COPYed straight into ``analytics.spans`` (one statement, multi-row inserts, no
  staging copy); only when that meets a span already stored (a redelivery, or a span twice in the batch)
  does it fall back to COPY into a temporary table and ``INSERT ... ON CONFLICT DO NOTHING RETURNING``;
- summaries and rollups are then added for exactly the spans inserted (``_aggregates``), with one
  set-based upsert each, in the same transaction, so a redelivered batch changes nothing and counts are never doubled;
- every statement touches rows in key order (``span_key``), so concurrent loaders of overlapping batches
  wait for each other instead of deadlocking.
The transaction, and retrying it after a deadlock or a dropped partition, are the store's.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from psycopg import errors as pg_errors
from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format

from agiflow_lab.db.database import Conn
from agiflow_lab.traces import _aggregates, live, text_index
from agiflow_lab.traces.records import SpanRecord

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
CopyRow = tuple[Any, ...]


async def write_batch(
    conn: Conn, project_id: int, batch: list[SpanRecord], rows: list[CopyRow], *, direct: bool
) -> int:
    """Store the spans of ``batch`` not stored yet and add exactly those to the summaries and rollups;
    returns how many. ``batch`` is in ``span_key`` order and ``rows`` is ``encode(project_id, batch)``;
    ``conn`` is in the caller's transaction. ``direct``: try the plain COPY first (see the module)."""
    inserted = await _insert_spans(conn, batch, rows, direct=direct)
    if inserted:
        summaries = await _aggregates.upsert_summaries(conn, project_id, inserted)
        await _aggregates.upsert_rollups(conn, project_id, inserted)
        # Last: every batch of an hour updates that hour's one filter row, so the row stays locked until this
        # transaction commits, and another writer's batch waits for it; taken first, it made writers take turns.
        await text_index.add(conn, project_id, summaries)
        await live.announce(conn, project_id)
    return len(inserted)


# ---------------------------------------------------------------- rows for COPY

# The COPY column order; received_at is left to its default (now(), the transaction's time).
SPAN_COLUMNS = (
    "project_id", "trace_id", "span_id", "start_time", "end_time", "duration_ms", "tokens_in", "tokens_out",
    "cost_usd", "prompt_version", "parent_span_id", "name", "kind", "status", "status_message", "service_name",
    "scope_name", "span_type", "model", "provider", "session_id", "user_id", "prompt_name", "tags", "input",
    "output", "attributes", "events", "resource_attributes",
)  # fmt: skip
SPAN_TYPES = (
    "int8", "bytea", "bytea", "timestamptz", "timestamptz", "float8", "int8", "int8",
    "float8", "int4", "bytea", "text", "text", "text", "text", "text",
    "text", "text", "text", "text", "text", "text", "text", "text[]", "text",
    "text", "jsonb", "jsonb", "jsonb",
)  # fmt: skip
_COLUMN_LIST = ", ".join(SPAN_COLUMNS)


class _Encoded(Dumper):
    """A COPY value we have already put in Postgres's binary form.

    For the columns where psycopg's own dumpers cost most: jsonb (``json.dumps`` per value, and one
    resource's attributes, shared by all its spans, would be encoded once per span) and text[] (a
    Python loop per element). Registered under the column's type for the COPY's cursor only; with
    ``set_types`` psycopg picks dumpers by type, so the Python class of the value does not matter."""

    format = Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]


class _EncodedJsonb(_Encoded):
    oid = postgres.types["jsonb"].oid


class _EncodedTextArray(_Encoded):
    oid = postgres.types["text"].array_oid


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one encoder: dumps() makes one a call
_TEXT_OID = postgres.types["text"].oid
_NO_TAGS = struct.pack(">iii", 0, 0, _TEXT_OID)


def _jsonb(value: object) -> bytes:
    """jsonb's binary form: a version byte, then the JSON text.

    orjson writes it: the standard library's encoder was a tenth of a span writer's CPU (three documents a
    span: attributes, events, resource), orjson takes a fifth of that. What orjson refuses (an integer
    beyond 64 bits, which OTLP's JSON form can carry) goes to the standard library, so nothing that stored
    before is refused now; text that is not valid UTF-8 fails either way (the decoders never produce it)."""
    if not value:
        return b"\x01[]" if isinstance(value, list) else b"\x01{}"
    try:
        return b"\x01" + orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return b"\x01" + _ENCODER.encode(value).encode()


def _text_array(values: tuple[str, ...]) -> bytes:
    """A one-dimensional text[] without NULLs in binary form (ndim, flags, element type, size, lower bound)."""
    if not values:
        return _NO_TAGS
    encoded = [v.encode() for v in values]
    return struct.pack(">iiiii", 1, 0, _TEXT_OID, len(encoded), 1) + b"".join(
        struct.pack(">i", len(e)) + e for e in encoded
    )


def _time(unix_ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=unix_ns // 1000)


def _row(project_id: int, s: SpanRecord, shared: dict[Any, bytes]) -> CopyRow:
    """The COPY row of a span; ``shared`` keeps, per batch, the encodings many spans have in common."""
    resource = shared.get(id(s.resource_attributes))
    if resource is None:
        resource = shared[id(s.resource_attributes)] = _jsonb(s.resource_attributes)
    tags = shared.get(s.tags)
    if tags is None:
        tags = shared[s.tags] = _text_array(s.tags)
    return (
        project_id, bytes.fromhex(s.trace_id), bytes.fromhex(s.span_id), _time(s.start_ns), _time(s.end_ns),
        (s.end_ns - s.start_ns) / 1e6, s.tokens_in, s.tokens_out, s.cost_usd, s.prompt_version,
        bytes.fromhex(s.parent_span_id) if s.parent_span_id else None, s.name, s.kind, s.status,
        s.status_message, s.service_name, s.scope_name, s.span_type, s.model, s.provider, s.session_id,
        s.user_id, s.prompt_name, tags, s.input, s.output, _jsonb(s.attributes), _jsonb(s.events), resource,
    )  # fmt: skip


def encode(project_id: int, batch: Iterable[SpanRecord]) -> list[CopyRow]:
    """The COPY rows of a batch, encoding once per batch what its spans share (resource attributes, tags)."""
    shared: dict[Any, bytes] = {}
    return [_row(project_id, s, shared) for s in batch]


def span_key(s: SpanRecord) -> tuple[str, str, int]:
    """The stored key's order (bytea of lowercase hex sorts like the hex), microseconds as stored."""
    return s.trace_id, s.span_id, s.start_ns // 1000


async def _insert_spans(conn: Conn, batch: list[SpanRecord], rows: list[CopyRow], *, direct: bool) -> list[SpanRecord]:
    """The spans of ``batch`` that were not stored yet, now stored."""
    if direct:
        try:
            async with conn.transaction():  # a savepoint: a conflict undoes only the direct COPY
                await copy_rows(conn, "analytics.spans", rows)
            return batch
        except pg_errors.UniqueViolation:
            pass
    await conn.execute("CREATE TEMP TABLE span_staging (LIKE analytics.spans INCLUDING DEFAULTS) ON COMMIT DROP")
    await copy_rows(conn, "span_staging", rows)
    cur = await conn.execute(
        f"""INSERT INTO analytics.spans ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM span_staging
             ORDER BY trace_id, span_id, start_time
                ON CONFLICT DO NOTHING RETURNING trace_id, span_id, start_time"""  # noqa: S608 (the column list is SPAN_COLUMNS)
    )
    new = {(r["trace_id"].hex(), r["span_id"].hex(), (r["start_time"] - EPOCH) // ONE_US) for r in await cur.fetchall()}
    inserted = []
    for s in batch:
        key = span_key(s)
        if key in new:
            new.discard(key)  # a span twice in the batch was inserted once: count it once
            inserted.append(s)
    return inserted


async def copy_rows(conn: Conn, table: str, rows: Iterable[CopyRow]) -> None:
    cur = conn.cursor()
    cur.adapters.register_dumper(None, _EncodedJsonb)
    cur.adapters.register_dumper(None, _EncodedTextArray)
    # table is one of two constants; the column list is SPAN_COLUMNS
    async with cur.copy(f"COPY {table} ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(SPAN_TYPES)
        for row in rows:
            await copy.write_row(row)
