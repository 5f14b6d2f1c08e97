"""Small value rules every decoder shares: text Postgres can store, numbers JSON can hold, valid ids.

Each is called per string or per id on the hot path, so each is a few C-level string operations, with
the slow branch only for the rare value that needs it.
"""

from __future__ import annotations

import base64
import binascii
import math

from agiflow_lab.traces.records import JsonValue

MAX_DEPTH = 64
TRUNCATED = "\n…[truncated: {size} bytes in total]"


def clean(text: str) -> str:
    """Drop NUL characters: Postgres ``text`` and ``jsonb`` refuse them, and a sender rarely means one."""
    return text.replace("\x00", "") if "\x00" in text else text


def clean_json_text(text: str) -> str:
    """``clean``, and lone surrogates (JSON's ``\\ud800``, not encodable as UTF-8) replaced with ``?``.

    Protobuf strings are checked UTF-8 already; only the JSON decoders need the second half."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode()
    return text


def json_float(value: float) -> JsonValue:
    """A float as JSON can carry it: NaN and the infinities become their names (``jsonb`` refuses them)."""
    if math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def cap_text(text: str, max_bytes: int) -> str:
    """At most ``max_bytes`` of UTF-8, cut on a character boundary and marked, so one span cannot bloat a row."""
    if len(text) * 4 <= max_bytes:  # cannot be over: a character is at most 4 bytes
        return text
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    marker = TRUNCATED.format(size=len(raw))
    return raw[: max_bytes - len(marker.encode())].decode(errors="ignore") + marker


def hex_id(value: str, size: int) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id from hex text, lowercased; None if not exactly that.

    Also takes ``0x``-prefixed hex (the agiflow-sdk's ``ReadableSpan.to_json``) and base64, which generic
    protobuf JSON encoders write for bytes although OTLP/JSON says hex: the lengths cannot be confused."""
    if value.startswith(("0x", "0X")):
        value = value[2:]
    if len(value) == size * 2:
        try:
            raw = bytes.fromhex(value)  # fromhex skips spaces, so the length check below still matters
        except ValueError:
            return None
    else:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    if len(raw) != size or not any(raw):  # all zeros is the spec's "invalid id"
        return None
    return raw.hex()


def json_id(value: object, size: int) -> str | None:
    """``hex_id`` for a JSON value of any type (only text can be an id)."""
    return hex_id(value, size) if isinstance(value, str) else None


def json_text(value: object) -> str:
    """A JSON string field, cleaned; absent is empty. Any other type is the sender's mistake."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return clean_json_text(value)


def bytes_id(value: bytes, size: int) -> str | None:
    """A protobuf id field as hex, or None when it is not ``size`` bytes or is all zeros."""
    if len(value) != size or not any(value):
        return None
    return value.hex()


def as_int(value: object) -> int | None:
    """An integer from an int, an integral float or decimal text (OTLP/JSON writes int64 as a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in ("+", "-") else text
        return int(text) if digits.isascii() and digits.isdecimal() else None
    return None
