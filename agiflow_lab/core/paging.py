"""Keyset pagination: opaque cursors that stay correct while rows are inserted.

A cursor is the sort key of a page's last row, as JSON, base64url-encoded. Clients send cursors back
unchanged, or not: so every list decodes its cursor against the exact key type it issues
(``Cursor[int](KeyInt)``, ``Cursor[tuple[datetime, UUID]](tuple[AwareDatetime, UUID])``), in strict
mode, with integers bounded to Postgres ``bigint`` and text free of NUL. Anything else, however
well-formed as JSON, is a 400 naming ``cursor`` instead of a database error further down.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agiflow_lab.core.json_input import INT64_MAX
from agiflow_lab.errors import InvalidInput

T = TypeVar("T")
K = TypeVar("K")
R = TypeVar("R")

MAX_LIMIT = 200
MAX_CURSOR_CHARS = 2048  # a name key is at most a few hundred characters; base64 adds a third

# Key parts. Strict: ``true`` is not 1 and ``"5"`` is not 5; the bounds are what Postgres can compare.
KeyInt = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
KeyText = Annotated[str, Field(strict=True, max_length=512, pattern=r"^[^\x00]*$")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null at the end")


class Cursor(Generic[K]):
    """The cursor of one list: encodes its key type and accepts nothing else back."""

    def __init__(self, key: Any) -> None:
        self._adapter: TypeAdapter[K] = TypeAdapter(key, config=ConfigDict(strict=True))

    def encode(self, key: K) -> str:
        return base64.urlsafe_b64encode(self._adapter.dump_json(key)).decode().rstrip("=")

    def decode(self, cursor: str | None) -> K | None:
        """The key a client sent back, or None for the first page."""
        if not cursor:
            return None
        try:
            if len(cursor) > MAX_CURSOR_CHARS:
                raise ValueError("too long")
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            return self._adapter.validate_json(raw)
        except (ValueError, ValidationError):  # binascii.Error is a ValueError
            raise InvalidInput("cursor is not one this API issued", {"field": "cursor"}) from None

    def next(self, rows: Sequence[R], limit: int, key: Callable[[R], K]) -> str | None:
        """The cursor after a page read with ``limit + 1`` rows: None when the extra row did not come."""
        return self.encode(key(rows[limit - 1])) if len(rows) > limit else None


def check_limit(limit: int, maximum: int = MAX_LIMIT) -> int:
    if not 1 <= limit <= maximum:
        raise InvalidInput(f"limit must be between 1 and {maximum}", {"field": "limit", "value": limit})
    return limit
