"""Whole-request failures of trace ingestion.

One problem span never fails its batch (it becomes a ``Rejected``); these are for a body that cannot be
read at all. They are ``AgiflowError``s with their HTTP status, so the OTLP receiver maps them like every
other handler does (400, 413, 415) instead of keeping its own table.
"""

from __future__ import annotations

from agiflow_lab.errors import InvalidInput, TooLarge, UnsupportedMediaType


class OtlpError(InvalidInput):
    """The body is not a readable export request: ``reason`` for the sender, ``field`` where, if known."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason, {"field": field} if field else None)
        self.reason = reason
        self.field = field


class OtlpTooLarge(TooLarge, OtlpError):
    """Larger than the limit once decompressed (a small gzip body can inflate to gigabytes)."""


class OtlpUnsupportedMediaType(UnsupportedMediaType, OtlpError):
    """A Content-Type or Content-Encoding this receiver does not read."""
