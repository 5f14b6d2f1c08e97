"""OpenAI Chat Completions through the official SDK: OpenAI itself, Azure OpenAI, and any compatible server
(vLLM, Ollama, LiteLLM, ...).

The SDK's own retries are off (``max_retries=0``): ``retry.py`` retries every vendor the same way and
counts attempts. Errors become ``ProviderError`` with the vendor's status and ``Retry-After``, and with any
API key scrubbed from the message, because vendors quote (masked) keys back in 401 answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import openai

import agiflow_lab.providers.aio_pool  # noqa: F401  (the pool of guarded_client, loaded with the adapter: off the event loop)
from agiflow_lab.providers.base import ClientSpec, Completion, CompletionRequest, ProviderError, Reply, read_reply
from agiflow_lab.providers.hosts import HostPolicy
from agiflow_lab.providers.retry import parse_retry_after, retryable_status
from agiflow_lab.providers.secrets import redact
from agiflow_lab.providers.transport import guarded_client
from agiflow_lab.providers.vendor import NO_KEY, connection_error, vendor_message


def from_spec(spec: ClientSpec) -> OpenAICompatibleClient:
    """The client of an ``openai`` or ``azure_openai`` connection (``providers.service.make_client``)."""
    return OpenAICompatibleClient(
        spec.base_url, spec.api_key, timeout=spec.timeout, default_headers=dict(spec.headers), kind=spec.kind,
        api_version=spec.options.get("api_version"), host_policy=spec.host_policy,
    )  # fmt: skip


class OpenAICompatibleClient:
    kind = "openai"

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        default_headers: Mapping[str, str] | None = None,
        kind: str = "openai",
        api_version: str | None = None,
        host_policy: HostPolicy | None = None,
    ) -> None:
        self.kind = kind
        self.base_url = base_url
        self._api_key = api_key
        self._sdk: openai.AsyncOpenAI
        http_client: Any = guarded_client("openai", host_policy or HostPolicy(), timeout)
        if kind == "azure_openai":
            if not base_url or not api_version:
                raise ProviderError("an Azure OpenAI connection needs base_url (the endpoint) and api_version")
            self._sdk = openai.AsyncAzureOpenAI(
                azure_endpoint=base_url, api_version=api_version, api_key=api_key or NO_KEY, timeout=timeout,
                max_retries=0, default_headers=dict(default_headers or {}), http_client=http_client,
            )  # fmt: skip
        else:
            self._sdk = openai.AsyncOpenAI(
                base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout, max_retries=0,
                default_headers=dict(default_headers or {}), http_client=http_client,
            )  # fmt: skip

    def __repr__(self) -> str:
        return f"OpenAICompatibleClient(kind={self.kind!r}, base_url={self.base_url!r})"

    async def complete(self, request: CompletionRequest) -> Completion:
        body: dict[str, Any] = {k: v for k, v in request.params.items() if v is not None}
        body.update(model=request.model, messages=request.messages)
        if request.json_output:
            body["response_format"] = {"type": "json_object"}
        started = time.perf_counter()
        try:
            # The SDK's documented way to send a request as is ("custom/undocumented requests"): its client
            # still adds the key, headers and base URL (Azure's deployment path too) and raises its own errors.
            # ``chat.completions.create`` also ran a typed transform of the parameters and built a model of the
            # reply that read_reply then checked again. In an evaluation the worker makes every model call of
            # the run, and the SDK was over half of its event loop's time: this cut the worker's CPU by ~9%.
            raw = await self._sdk.post("/chat/completions", cast_to=bytes, body=body)
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        latency_ms = (time.perf_counter() - started) * 1000
        reply = read_reply(_ChatCompletion, raw, self.kind)
        text = (reply.choices[0].message.content or "") if reply.choices else ""
        usage = reply.usage
        return Completion(
            text=text, model=reply.model or request.model,
            tokens_in=usage.prompt_tokens if usage else None, tokens_out=usage.completion_tokens if usage else None,
            latency_ms=latency_ms,
        )  # fmt: skip

    def _error(self, exc: openai.OpenAIError) -> ProviderError:
        # ``from None`` above: the SDK exception holds the request, whose headers carry the key.
        where = self.kind
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(f"{where}: the request timed out", retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            return connection_error(where, exc)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            return ProviderError(
                f"{where}: HTTP {status}: {redact(vendor_message(exc.body), self._api_key)}", status=status,
                retryable=retryable_status(status), retry_after=parse_retry_after(exc.response.headers),
            )  # fmt: skip
        return ProviderError(f"{where}: {type(exc).__name__}: {redact(str(exc), self._api_key)}")

    async def close(self) -> None:
        await self._sdk.close()


class _ChatMessage(Reply):
    content: str | None = None


class _Choice(Reply):
    message: _ChatMessage


class _Usage(Reply):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class _ChatCompletion(Reply):
    api = "OpenAI Chat Completions"
    choices: list[_Choice]
    model: str | None = None
    usage: _Usage | None = None
