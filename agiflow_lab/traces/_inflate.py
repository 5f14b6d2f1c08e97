"""Content-Encoding, undone without ever holding more than the limit.

``gzip.decompress`` inflates everything before anyone can look at the size: 50 KB of gzip can be 50 MB of
zeros, or 50 GB. ``decompressobj.decompress(data, max_length)`` stops at the limit instead, so a bomb costs
at most ``max_bytes`` of memory before it is refused.
"""

from __future__ import annotations

import zlib

from agiflow_lab.traces.errors import OtlpError, OtlpTooLarge, OtlpUnsupportedMediaType

_GZIP = 16 + zlib.MAX_WBITS
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


def decode_content(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body with every listed coding removed (they apply in order, so undo them in reverse)."""
    for coding in reversed((content_encoding or "").split(",")):
        coding = coding.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, _GZIP, max_bytes, "gzip")
        elif coding == "deflate":
            body = _inflate(body, _ZLIB if _is_zlib(body) else _RAW_DEFLATE, max_bytes, "deflate")
        else:
            raise OtlpUnsupportedMediaType(f"unsupported Content-Encoding {coding!r}", "Content-Encoding")
    if len(body) > max_bytes:
        raise OtlpTooLarge(f"body larger than {max_bytes} bytes", "body")
    return body


def _is_zlib(body: bytes) -> bool:
    """HTTP ``deflate`` means zlib-wrapped, but some senders send raw deflate; the zlib header tells them apart."""
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _inflate(body: bytes, wbits: int, max_bytes: int, coding: str) -> bytes:
    """Inflate every member (gzip allows several back to back), refusing once past ``max_bytes``."""
    parts: list[bytes] = []
    budget = max_bytes
    data = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(data, budget + 1)
        except zlib.error as e:
            raise OtlpError(f"invalid {coding} data: {e}", "Content-Encoding") from None
        if len(chunk) > budget:
            raise OtlpTooLarge(f"body larger than {max_bytes} bytes once decompressed", "body")
        if not inflater.eof:
            raise OtlpError(f"truncated {coding} data", "Content-Encoding")
        parts.append(chunk)
        budget -= len(chunk)
        data = inflater.unused_data
        if not data or wbits != _GZIP:
            break
    if data:
        raise OtlpError(f"trailing bytes after the {coding} data", "Content-Encoding")
    return b"".join(parts)
