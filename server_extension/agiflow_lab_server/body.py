"""Request bodies read as they arrive, so a size limit holds before a body is in memory.

Tornado reads a whole body before a handler sees it, unless the handler streams. Every AGIFlow handler
streams: ``admit_body`` (called first in ``prepare``, from the headers alone) refuses a declared
``Content-Length`` over the route's limit before a byte of the body is read, and ``data_received`` counts
a chunked body as it comes. Both answer 413 ``too_large`` naming the limit and its setting.

A refusal decided before the body is in (a 401 or 403 from ``prepare``) is held until the body has been
read and dropped, up to the limit: answering first makes tornado close the connection under a client
that is still sending, which then sees a reset instead of the answer. An oversized body, a client that
sent ``Expect: 100-continue`` (it has not sent the body yet) and a handler that sets ``_answer_now``
(an anonymous upload) are answered at once, with ``Connection: close``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado.concurrent import Future
from tornado.http1connection import HTTP1Connection
from tornado.web import stream_request_body

from agiflow_lab.errors import TooLarge

# Tornado's own limit is lifted per request: ours is enforced here, as JSON, before tornado's would apply.
_UNLIMITED = 2**62


@stream_request_body
class StreamedBody(APIHandler):  # type: ignore[misc]
    _answer_now = False  # refuse without reading the body (a handler sets it while that is right)
    _closing = False  # answering before the body is in: tornado closes the connection afterwards
    _held: tuple[int, dict[str, Any]] | None = None  # a refusal waiting for the body to be drained
    _received = 0
    _buffer: bytearray | None = None

    def body_limit(self) -> tuple[int, str]:
        """(bytes, the setting that sets them) for this route."""
        raise NotImplementedError

    @property
    def body(self) -> bytes:
        return bytes(self._buffer or b"")

    def admit_body(self) -> None:
        limit, setting = self.body_limit()
        declared = self.request.headers.get("Content-Length", "")
        if isinstance(self.request.connection, HTTP1Connection):
            self.request.connection.set_max_body_size(_UNLIMITED)
        if declared.isdigit() and int(declared) > limit:
            self._answer_now = True
            raise _too_large(limit, setting)

    def receive(self, chunk: bytes) -> Awaitable[None] | None:
        """Where an accepted chunk goes: kept for ``parse`` unless a handler consumes it as it comes."""
        if self._buffer is None:
            self._buffer = bytearray()
        self._buffer += chunk
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        self._received += len(chunk)
        if self._closing:
            return None
        limit, setting = self.body_limit()
        if self._received > limit:
            self._buffer = None
            if self._held is not None:  # the refusal was waiting for a body that does not end: send it now
                status, kwargs = self._held
                self._held, self._closing = None, True
                super().send_error(status, **kwargs)
            else:
                exc = _too_large(limit, setting)
                self._answer_now = True
                self.send_error(exc.status, exc_info=(type(exc), exc, None))
            return None
        if self._held is not None:
            return None  # drained unread
        return self.receive(chunk)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        future: Future[None] | None = getattr(self.request, "_body_future", None)
        if future is not None and not future.done() and not self._closing:
            expects_continue = self.request.headers.get("Expect", "").lower() == "100-continue"
            if not (self._answer_now or expects_continue):
                if self._held is None:
                    self._held = (status_code, kwargs)
                    future.add_done_callback(self._release)
                return
            self._closing = True
        super().send_error(status_code, **kwargs)

    def _release(self, future: Future[None]) -> None:
        held, self._held = self._held, None
        if held is not None and not self._finished and future.exception() is None:
            super().send_error(held[0], **held[1])

    def set_default_headers(self) -> None:
        super().set_default_headers()
        if self._closing:  # send_error clears the headers, then sets these: tell the client not to reuse it
            self.set_header("Connection", "close")


def _too_large(limit: int, setting: str) -> TooLarge:
    return TooLarge(
        f"the body is larger than this endpoint's limit of {limit} bytes ({setting})",
        {"field": "body", "limit": limit, "setting": setting},
    )
