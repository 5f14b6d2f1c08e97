"""The connection pool under the provider SDKs' HTTP clients: aiohttp's, behind the ``httpx``/``httpx2``
transport interface the SDKs take.

Why not httpx's own pool (httpcore): in an evaluation the worker makes every model call of the run, up to
the run's concurrency at a time, on one event loop, and httpcore walks every pooled connection on each
request (checking whether its socket has expired): with 32 connections that walk was the largest single
part of the worker's time per call. aiohttp hands out an idle connection without it; the worker's CPU
per call fell by about a fifth. The openai SDK offers the same swap (``DefaultAioHttpClient``); this one
sits under ``transport.GuardedTransport``, which still decides where each request may go: a request
arrives here with its URL pinned to a checked address and the original host as ``sni_hostname``, the name
TLS sends and verifies the certificate against (``server_hostname``), and its ``Host`` header.

On Python 3.11 aiohttp writes each request in a task of its own that runs only after everything else
already queued on the event loop (3.12+ starts that task eagerly: ``EagerWriteRequest`` does the same
here). In an evaluation 32 replies often arrive together: each slot then read its reply and made its
next request, and all 32 requests went out together once the last had been made, came back together
a model latency later, and queued again, so the group never spread out and each call waited for the
others' work. Written at once, the requests leave spread by the work between them and come back spread
too: against a model answering in exactly 100 ms, 32 slots went from 89% to 94% of 320 calls/s, and
the request's time from the SDK to the server from 3–4 ms to 0.5 ms.

Imported by the SDK adapters, which load off the event loop (``providers.service.load_adapter``).
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import sys
from collections.abc import AsyncIterator, Coroutine, Generator, Iterator
from types import ModuleType
from typing import Any, Generic, TypeVar

import aiohttp
import certifi
from yarl import URL

# Headers the SDK's request already carries as it means them; aiohttp must not add its own.
_SDK_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")


# The CA bundle httpx verifies against by default (``certifi``), so swapping the pool changes no trust. Made
# here, where the module is imported (off the event loop): reading and parsing the bundle takes ~25 ms.
_TLS = ssl.create_default_context(cafile=certifi.where())

T = TypeVar("T")


class _Rest(Generic[T]):
    """The rest of a coroutine that ``started`` ran up to where it first waited: the task awaiting this
    waits on the same thing, and what the task sends or throws goes on to the coroutine (``yield from``
    by hand, since the coroutine has already begun)."""

    def __init__(self, coro: Coroutine[Any, Any, T], waiting_on: Any) -> None:
        self._coro = coro
        self._waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, T]:
        waiting_on = self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                self._coro.close()
                raise
            except BaseException as exc:  # the task's cancellation, among others
                try:
                    waiting_on = self._coro.throw(exc)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
            else:
                try:
                    waiting_on = self._coro.send(sent)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]


def started(coro: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """Runs ``coro`` here, in the caller, up to where it first waits, and returns a coroutine that finishes
    it: what ``asyncio.Task(coro, eager_start=True)`` does on Python 3.12+."""
    try:
        waiting_on = coro.send(None)
    except StopIteration as stop:
        return _returning(stop.value)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # raised where the task would have raised it
        return _raising(exc)
    return _finishing(_Rest(coro, waiting_on))


async def _returning(value: T) -> T:
    return value


async def _raising(exc: BaseException) -> Any:
    raise exc


async def _finishing(rest: _Rest[T]) -> T:
    return await rest


if sys.version_info >= (3, 12):
    EagerWriteRequest = aiohttp.ClientRequest  # aiohttp starts the writer eagerly itself
else:

    class EagerWriteRequest(aiohttp.ClientRequest):
        """Writes the request body (and the headers with it) at once instead of in a task queued behind
        everything else on the loop (see the module's docstring for why that matters)."""

        def write_bytes(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, None]:  # type: ignore[override]
            return started(super().write_bytes(*args, **kwargs))


@functools.cache
def pool_class(http: ModuleType) -> type[Any]:
    """The pool as a transport of ``http`` (``httpx`` or ``httpx2``: the SDK's library)."""

    @contextlib.contextmanager
    def mapped(request: Any) -> Iterator[None]:
        """aiohttp's errors as the ``http`` library's, which the SDKs turn into their connection and timeout
        errors (and ``GuardedTransport`` reads ``ConnectError`` as "try the next address")."""
        try:
            yield
        except aiohttp.ConnectionTimeoutError as exc:
            raise http.ConnectTimeout(str(exc) or "connecting timed out", request=request) from exc
        except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
            raise http.ReadTimeout(str(exc) or "reading the response timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise http.ConnectError(str(exc), request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise http.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
        except aiohttp.ClientError as exc:
            raise http.ReadError(str(exc) or type(exc).__name__, request=request) from exc

    class Body(http.AsyncByteStream):  # type: ignore[name-defined,misc]
        def __init__(self, response: aiohttp.ClientResponse, request: Any) -> None:
            self._response = response
            self._request = request

        async def __aiter__(self) -> AsyncIterator[bytes]:
            with mapped(self._request):
                async for chunk in self._response.content.iter_any():
                    yield chunk

        async def aclose(self) -> None:
            self._response.release()  # back to the pool when read to the end; closed otherwise

    class AiohttpPool(http.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self, max_connections: int, keepalive_expiry: float, tls: ssl.SSLContext | None = None) -> None:
            self._max_connections = max_connections
            self._keepalive_expiry = keepalive_expiry
            self._tls = tls or _TLS
            self._session: aiohttp.ClientSession | None = None

        def _open(self) -> aiohttp.ClientSession:
            if self._session is None:  # made on first use: aiohttp binds it to the running loop
                connector = aiohttp.TCPConnector(
                    limit=self._max_connections, keepalive_timeout=self._keepalive_expiry, ssl=self._tls
                )
                self._session = aiohttp.ClientSession(
                    connector=connector, trust_env=False, auto_decompress=False, skip_auto_headers=_SDK_HEADERS,
                    request_class=EagerWriteRequest,
                )  # fmt: skip
            return self._session

        async def handle_async_request(self, request: Any) -> Any:
            timeouts = request.extensions.get("timeout") or {}
            try:
                data: bytes = request.content
            except http.RequestNotRead:
                data = b"".join([chunk async for chunk in request.stream])
            with mapped(request):
                response = await self._open().request(
                    request.method, URL(str(request.url), encoded=True), headers=request.headers.multi_items(),
                    data=data or None, allow_redirects=False, server_hostname=request.extensions.get("sni_hostname"),
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
                    ),
                )  # fmt: skip
            return http.Response(
                response.status, headers=list(response.raw_headers), stream=Body(response, request), request=request,
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
            )  # fmt: skip

        async def aclose(self) -> None:
            if self._session is not None:
                await self._session.close()
                self._session = None

    return AiohttpPool
