"""The HTTP client every provider SDK gets: it connects only to addresses ``hosts.HostPolicy`` allows.

Checking ``base_url`` when a connection is saved is not enough: a name can resolve differently a second
later (DNS rebinding), and the SDK would resolve it again on its own. So this transport resolves each
request's host itself (the OS resolver, off the event loop; a checked answer is reused for ``ANSWER_TTL``
seconds), checks every address, and sends the request
to the checked address: the URL is pinned to the IP while the ``Host`` header and the TLS server name
(``sni_hostname``, which is also what the certificate is verified against) stay the original host. There
is no second resolution for an attacker to race.

The SDKs take an ``http_client``; current ones are built on ``httpx2`` (and the Anthropic SDK refuses an
``httpx`` client), older ones on ``httpx``, whose API ``httpx2`` keeps. The transport is therefore made for
whichever library the SDK in hand uses (``http_library``), from public API only, so the SDKs keep their
own request and error handling. Redirects are not followed (an API endpoint does not redirect, and a
redirect would carry the connection's custom headers to another host), and environment proxies and
``.netrc`` are ignored (``trust_env=False``): a proxy would resolve and reach addresses nobody checked.
"""

from __future__ import annotations

import functools
import importlib
import ssl
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from agiflow_lab.providers.hosts import RESOLVE_TIMEOUT, HostPolicy, HostRefused

# The SDKs' own connection limits for their default clients.
MAX_CONNECTIONS, MAX_KEEPALIVE, KEEPALIVE_EXPIRY = 1000, 100, 5.0
# How long a checked DNS answer is reused (seconds); shorter than the TTLs API providers publish.
ANSWER_TTL = 30.0


def http_library(sdk: str) -> ModuleType:
    """The HTTP library the SDK package ``sdk`` ("openai", "anthropic") is built on."""
    base = importlib.import_module(f"{sdk}._base_client")
    library = getattr(base, "httpx2", None) or getattr(base, "httpx", None)
    if not isinstance(library, ModuleType):
        raise RuntimeError(f"cannot tell which HTTP library the {sdk} SDK uses")
    return library


@functools.cache
def _transport_class(http: ModuleType) -> type[Any]:
    class BlockedHost(http.ConnectError):  # type: ignore[name-defined,misc]
        """The host is not one this server may call; the SDKs wrap it in their connection error."""

        agiflow_blocked = True

    class GuardedTransport(http.AsyncBaseTransport):  # type: ignore[name-defined,misc]
        def __init__(self, policy: HostPolicy, new_pool: Callable[[], Any]) -> None:
            self.policy = policy
            self._new_pool = new_pool
            # One pool per original host: a TLS connection made for one name is never reused for another
            # name that happens to share its address.
            self._pools: dict[tuple[str, str, int], Any] = {}
            # Checked answers, reused for ANSWER_TTL: a model call per item must not cost a resolver trip
            # through the executor each time. Reuse is safe: requests still go to an address that was checked.
            self._answers: dict[tuple[str, int], tuple[float, list[str]]] = {}

        async def _addresses(self, host: str, port: int, resolve_within: float) -> list[str]:
            key = (host, port)
            if (answer := self._answers.get(key)) is not None and answer[0] > time.monotonic():
                return answer[1]
            addresses = await self.policy.resolve(host, port, timeout=resolve_within)
            self._answers[key] = (time.monotonic() + ANSWER_TTL, addresses)
            return addresses

        def _pool(self, scheme: str, host: str, port: int) -> Any:
            key = (scheme, host, port)
            if key not in self._pools:
                self._pools[key] = self._new_pool()
            return self._pools[key]

        async def handle_async_request(self, request: Any) -> Any:
            url = request.url
            host: str = url.host
            if url.scheme not in ("http", "https"):
                raise BlockedHost(f"refused to connect to {host}: the {url.scheme!r} scheme", request=request)
            port: int = url.port or (443 if url.scheme == "https" else 80)
            timeouts = request.extensions.get("timeout") or {}
            try:
                addresses = await self._addresses(host, port, timeouts.get("connect") or RESOLVE_TIMEOUT)
            except HostRefused as exc:
                raise BlockedHost(f"refused to connect to {host}: {exc}", request=request) from None
            except TimeoutError:
                raise http.ConnectTimeout(f"resolving {host} timed out", request=request) from None
            except OSError:
                raise http.ConnectError(f"cannot resolve {host}", request=request) from None
            extensions = dict(request.extensions)
            if url.scheme == "https":
                extensions.setdefault("sni_hostname", host)
            pool = self._pool(url.scheme, host, port)
            failure: Exception | None = None
            for address in addresses:  # in the resolver's order; the next one only if connecting failed
                pinned = http.Request(
                    request.method, url.copy_with(host=address), headers=request.headers, stream=request.stream,
                    extensions=extensions,
                )  # fmt: skip
                try:
                    return await pool.handle_async_request(pinned)
                except http.ConnectError as exc:
                    failure = exc
            assert failure is not None
            self._answers.pop((host, port), None)  # none of them answered: ask the resolver again next time
            raise failure

        async def aclose(self) -> None:
            for pool in self._pools.values():
                await pool.aclose()
            self._pools.clear()

    return GuardedTransport


def guarded_client(sdk: str, policy: HostPolicy, timeout: float, tls: ssl.SSLContext | None = None) -> Any:
    """An ``http_client`` for the SDK package ``sdk`` (the SDK closes it with itself), on aiohttp's pool
    (``aio_pool``: model calls are this client's load). ``tls``: trust other than certifi's CA bundle."""
    from agiflow_lab.providers.aio_pool import pool_class

    http = http_library(sdk)
    pool = pool_class(http)
    transport = _transport_class(http)(policy, lambda: pool(MAX_CONNECTIONS, KEEPALIVE_EXPIRY, tls))
    return http.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)


def guarded_httpx_client(policy: HostPolicy, timeout: float) -> Any:
    """The same guard on a plain ``httpx`` client, for the server's own calls to owner-chosen URLs (webhooks),
    on httpx's own pool: a few calls a minute, not worth importing aiohttp into the server for."""
    import httpx

    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE,
                          keepalive_expiry=KEEPALIVE_EXPIRY)  # fmt: skip
    transport = _transport_class(httpx)(policy, lambda: httpx.AsyncHTTPTransport(limits=limits))
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)


def blocked_host(exc: BaseException) -> BaseException | None:
    """The refusal behind an SDK's connection error, if that is what it was (its message says why)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if getattr(current, "agiflow_blocked", False):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
