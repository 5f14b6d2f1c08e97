"""One HTTP session against ``{server}/agiflow/api/v1``: auth header, JSON in and out, errors as ``ApiError``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any
from urllib.parse import quote

import httpx

from agiflow_lab import __version__
from agiflow_lab.keys.secrets import PREFIX as KEY_PREFIX
from agiflow_lab.sdk.errors import ApiError, ApiNotFound, ServerUnreachable, error_for

API_PATH = "agiflow/api/v1"


@dataclass(frozen=True)
class Endpoint:
    """Where the API is and how to authenticate; ``source`` says how it was found (for error messages)."""

    url: str
    secret: str
    source: str = "arguments"
    unix_socket: str | None = None

    @property
    def api_url(self) -> str:
        return api_url(self.url)

    @property
    def authorization(self) -> str:
        # Project API keys are bearer tokens; anything else is a Jupyter (or JupyterHub) token.
        scheme = "Bearer" if self.secret.startswith(KEY_PREFIX) else "token"
        return f"{scheme} {self.secret}"


def api_url(url: str) -> str:
    """Accept the server's URL (``http://host:8888/``, with any base URL) or the API's own URL."""
    url = url.strip().rstrip("/")
    if url.endswith("/" + API_PATH):
        return url
    return f"{url}/{API_PATH}"


def segment(value: str) -> str:
    """Quote one path segment (prompt names may hold dots; nothing may smuggle in a slash)."""
    return quote(value, safe="")


class Transport:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        if transport is None and endpoint.unix_socket:
            transport = httpx.HTTPTransport(uds=endpoint.unix_socket)
        self.http = httpx.Client(
            base_url=endpoint.api_url + "/",
            headers={"Authorization": endpoint.authorization, "User-Agent": f"agiflow-lab-sdk/{__version__}"},
            timeout=timeout,
            transport=transport,
        )

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        """Send one request; the decoded JSON body (None for 204), or an ``ApiError``."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.http.request(method, path.lstrip("/"), json=json, params=clean)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        return self._decode(method, path, response)

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """GET a cursor-paged list: each page's JSON in turn, until a page's ``next_cursor`` is null.

        Lazy: a page is requested when the one before it has been consumed."""
        cursor: str | None = None
        while True:
            page: dict[str, Any] = self.request("GET", path, params={**(params or {}), "cursor": cursor})
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def items(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        key: str = "items",
        limit: int | None = None,
        page_size: int = 200,
    ) -> Iterator[Any]:
        """The pages' ``key`` lists, concatenated; at most ``limit`` items (None: all), fetching no page past them
        and asking for no larger pages than needed."""
        size = page_size if limit is None else max(1, min(page_size, limit))
        found = (item for page in self.pages(path, {**(params or {}), "limit": size}) for item in page[key])
        return found if limit is None else islice(found, limit)

    def upload(
        self,
        path: str,
        content: Iterable[bytes],
        *,
        content_type: str,
        params: dict[str, Any] | None = None,
        timeout: float = 600.0,
    ) -> Any:
        """POST a body produced piece by piece (sent chunked, never joined in memory); the decoded JSON answer.

        ``timeout`` bounds each read, including the wait while the server commits a large upload.
        """
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self.http.post(
                path.lstrip("/"),
                content=content,
                params=clean,
                headers={"Content-Type": content_type},
                timeout=httpx.Timeout(timeout, connect=self.http.timeout.connect),
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        return self._decode("POST", path, response)

    @contextmanager
    def stream(
        self, path: str, *, params: dict[str, Any] | None = None, timeout: float = 600.0
    ) -> Iterator[httpx.Response]:
        """GET a response to read as it arrives (``iter_lines()``); errors are raised before the body is read."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            with self.http.stream(
                "GET", path.lstrip("/"), params=clean, timeout=httpx.Timeout(timeout, connect=self.http.timeout.connect)
            ) as response:
                if not response.is_success:
                    response.read()
                    self._decode("GET", path, response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: httpx.TransportError) -> ServerUnreachable:
        return ServerUnreachable(
            f"cannot reach AGIFlow at {self.endpoint.api_url} ({self.endpoint.source}): {type(exc).__name__}: {exc}"
        )

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            if body is None:
                raise ApiError(
                    f"{method} {path}: the server answered {response.status_code} without JSON",
                    status=response.status_code,
                    code="bad_response",
                )
            return body
        error = error_for(response.status_code, body)
        if isinstance(error, ApiNotFound) and body is None:
            error.message = f"no AGIFlow API at {self.endpoint.api_url} (is the agiflow_lab server extension enabled?)"
        raise error

    def close(self) -> None:
        self.http.close()
