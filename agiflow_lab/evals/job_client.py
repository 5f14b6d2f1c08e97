"""The kernel's side of the job API: an evaluation run's reads, writes and model calls, made over HTTP to
the worker that runs this job, with the job's token. No database URL, secret key or model key is ever
in the kernel (it runs user code); see ``agiflow_lab_workers.job_api`` for the server side."""

from __future__ import annotations

import os
from typing import Any

import httpx

from agiflow_lab.evals.wire import (
    JOB_API_VERSION,
    CompleteCall,
    CompleteReply,
    ItemsPage,
    Progress,
    ReportData,
    ResultsBatch,
    RunSpec,
    Totals,
)
from agiflow_lab.providers.base import Completion, CompletionRequest, ProviderError

ENV_URL = "AGIFLOW_JOB_API"
ENV_TOKEN = "AGIFLOW_JOB_TOKEN"


class JobApiError(RuntimeError):
    pass


class JobApiClient:
    def __init__(self, url: str, token: str, *, connections: int = 64, timeout: float = 600.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=f"{url.rstrip('/')}/{JOB_API_VERSION}",
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=timeout,
            trust_env=False,  # the worker is on this host; never send the token through a proxy
        )

    @classmethod
    def from_env(cls) -> JobApiClient:
        url, token = os.environ.get(ENV_URL), os.environ.get(ENV_TOKEN)
        if not url or not token:
            raise JobApiError(f"{ENV_URL} and {ENV_TOKEN} are not set: this notebook runs as an AGIFlow job")
        return cls(url, token)

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

    async def report(self) -> ReportData:
        return ReportData.model_validate_json(await self._call("GET", "/run/report"))

    def completer(self, connection: str) -> Any:
        """``complete(request)`` for ``connection``, the worker applying the run's retry policy."""

        async def complete(request: CompletionRequest) -> Completion:
            call = CompleteCall(connection=connection, messages=request.messages, model=request.model,
                                params=request.params, json_output=request.json_output)  # fmt: skip
            reply = CompleteReply.model_validate_json(
                await self._call("POST", "/run/complete", content=call.model_dump_json())
            )
            if reply.error is not None or reply.text is None:
                raise ProviderError(reply.error or "no completion", status=reply.status, attempts=reply.attempts)
            return Completion(text=reply.text, model=reply.model or request.model, tokens_in=reply.tokens_in,
                              tokens_out=reply.tokens_out, latency_ms=reply.latency_ms or 0.0,
                              attempts=reply.attempts)  # fmt: skip

        return complete

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> bytes:
        headers = {"Content-Type": "application/json"} if "content" in kwargs else None
        r = await self._http.request(method, path, headers=headers, **kwargs)
        if r.status_code >= 400:
            raise JobApiError(f"job API {method} {path}: {r.status_code} {r.text[:500]}")
        return r.content
