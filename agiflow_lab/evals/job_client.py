"""The kernel's side of the job API: an evaluation run's reads, writes and model calls, made over HTTP to
the worker that runs this job, with the job's token. No database URL, secret key or model key is ever
in the kernel (it runs user code); see ``agiflow_lab_workers.job_api`` for the server side.

Model calls share one WebSocket (``CallChannel``): an HTTP request per item cost the kernel more CPU
than the rest of the item's evaluation."""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

import httpx
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from agiflow_lab.evals.wire import (
    ENV_TOKEN,
    ENV_URL,
    JOB_API_VERSION,
    CallFrame,
    CompleteCall,
    CompleteReply,
    ItemsPage,
    OutputWritten,
    Progress,
    ReplyFrame,
    ReportData,
    ResultsBatch,
    RunSpec,
    Totals,
)
from agiflow_lab.providers.base import Completion, CompletionRequest, ProviderError


class JobApiError(RuntimeError):
    pass


class CallChannel:
    """Model calls multiplexed over one WebSocket: each call waits for the reply frame with its id.

    Opened on first use; if the socket drops, the calls in flight fail (their items record the error, as
    for any failed call) and the next call opens a new one."""

    def __init__(self, url: str, token: str, max_message: int = 64 * 1024 * 1024) -> None:
        ws_url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        self._request = HTTPRequest(f"{ws_url}/run/calls", headers={"Authorization": f"Bearer {token}"})
        self._max_message = max_message
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[ReplyFrame]] = {}
        self._socket: WebSocketClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._opening = asyncio.Lock()

    async def call(self, call: CompleteCall) -> CompleteReply:
        socket = await self._open()
        frame = CallFrame(id=next(self._ids), call=call)
        waiter: asyncio.Future[ReplyFrame] = asyncio.get_running_loop().create_future()
        self._pending[frame.id] = waiter
        try:
            await socket.write_message(frame.model_dump_json())
            reply = await waiter
        except WebSocketClosedError:
            raise JobApiError("job API: the calls socket closed") from None
        finally:
            self._pending.pop(frame.id, None)
        if reply.reply is None:
            raise JobApiError(f"job API call: {reply.status} {reply.error}")
        return reply.reply

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _open(self) -> WebSocketClientConnection:
        async with self._opening:
            if self._socket is None:
                try:
                    self._socket = await websocket_connect(self._request, max_message_size=self._max_message)
                except HTTPClientError as exc:
                    body = exc.response.body.decode(errors="replace")[:500] if exc.response is not None else ""
                    raise JobApiError(f"job API /run/calls: {exc.code} {body}") from None
                self._socket.stream.set_nodelay(True)  # one small frame per call: do not wait for ACKs
                self._reader = asyncio.create_task(self._read(self._socket))
            return self._socket

    async def _read(self, socket: WebSocketClientConnection) -> None:
        try:
            while (message := await socket.read_message()) is not None:
                reply = ReplyFrame.model_validate_json(message)
                if (waiter := self._pending.get(reply.id)) is not None and not waiter.done():
                    waiter.set_result(reply)
        finally:
            self._socket = None
            gone = JobApiError(f"job API: the calls socket closed ({socket.close_code} {socket.close_reason})")
            for waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(gone)


def job_api_from_env() -> tuple[str, str]:
    """The worker's job API URL and this job's token, as the runner sets them in the kernel."""
    url, token = os.environ.get(ENV_URL), os.environ.get(ENV_TOKEN)
    if not url or not token:
        raise JobApiError(f"{ENV_URL} and {ENV_TOKEN} are not set: this notebook runs as an AGIFlow job")
    return url, token


def job_api_http(url: str, token: str, *, timeout: float, connections: int | None = None) -> httpx.AsyncClient:
    """An HTTP client of the job API with the job's token (never through a proxy: the worker is on this host)."""
    options: dict[str, Any] = {}
    if connections is not None:
        options["limits"] = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=f"{url.rstrip('/')}/{JOB_API_VERSION}", headers={"Authorization": f"Bearer {token}"},
                             timeout=timeout, trust_env=False, **options)  # fmt: skip


class JobApiClient:
    def __init__(self, url: str, token: str, *, connections: int = 64, timeout: float = 600.0) -> None:
        self._calls = CallChannel(f"{url.rstrip('/')}/{JOB_API_VERSION}", token)
        self._http = job_api_http(url, token, timeout=timeout, connections=connections)

    @classmethod
    def from_env(cls) -> JobApiClient:
        return cls(*job_api_from_env())

    async def spec(self) -> RunSpec:
        return RunSpec.model_validate_json(await self._call("GET", "/run"))

    async def totals(self) -> Totals:
        return Totals.model_validate_json(await self._call("GET", "/run/totals"))

    async def pending_items(self, after: int, limit: int) -> ItemsPage:
        return ItemsPage.model_validate_json(
            await self._call("GET", "/run/items", params={"after": after, "limit": limit})
        )

    async def write(self, results: list[dict[str, Any]], progress: Progress | None) -> None:
        body = ResultsBatch(results=results, progress=progress)
        await self._call("POST", "/run/results", content=body.model_dump_json())

    async def write_output(self) -> OutputWritten:
        """Batch inference: have the worker write this run's items with their outputs as its output dataset."""
        return OutputWritten.model_validate_json(await self._call("POST", "/run/output"))

    async def report(self) -> ReportData:
        return ReportData.model_validate_json(await self._call("GET", "/run/report"))

    def completer(self, connection: str) -> Any:
        """``complete(request)`` for ``connection``, the worker applying the run's retry policy."""

        async def complete(request: CompletionRequest) -> Completion:
            call = CompleteCall(connection=connection, messages=request.messages, model=request.model,
                                params=request.params, json_output=request.json_output)  # fmt: skip
            reply = await self._calls.call(call)
            if reply.error is not None or reply.text is None:
                raise ProviderError(reply.error or "no completion", status=reply.status, attempts=reply.attempts)
            return Completion(text=reply.text, model=reply.model or request.model, tokens_in=reply.tokens_in,
                              tokens_out=reply.tokens_out, latency_ms=reply.latency_ms or 0.0,
                              attempts=reply.attempts)  # fmt: skip

        return complete

    async def close(self) -> None:
        await self._calls.close()
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> bytes:
        headers = {"Content-Type": "application/json"} if "content" in kwargs else None
        r = await self._http.request(method, path, headers=headers, **kwargs)
        if r.status_code >= 400:
            raise JobApiError(f"job API {method} {path}: {r.status_code} {r.text[:500]}")
        return r.content
