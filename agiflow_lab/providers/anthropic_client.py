"""Anthropic Messages through the official SDK.

Prompts are written once and run against any vendor, so this adapter translates the OpenAI-shaped
request: system (and developer) messages go to ``system=``, ``stop`` becomes ``stop_sequences``,
``max_tokens`` (required by Anthropic) defaults to 1024, and OpenAI-only switches with no Anthropic
meaning (``seed``, ``response_format``, penalties, ...) are dropped rather than sent to fail with a 400.
Anthropic has no JSON mode, so ``json_output`` becomes an instruction in the system prompt.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Mapping
from typing import Any

import anthropic
from anthropic.resources.messages import AsyncMessages

import agiflow_lab.providers.aio_pool  # noqa: F401  (the pool of guarded_client, loaded with the adapter: off the event loop)
from agiflow_lab.providers.base import ClientSpec, Completion, CompletionRequest, ProviderError, Reply, read_reply
from agiflow_lab.providers.hosts import HostPolicy
from agiflow_lab.providers.retry import parse_retry_after, retryable_status
from agiflow_lab.providers.secrets import redact
from agiflow_lab.providers.transport import guarded_client
from agiflow_lab.providers.vendor import NO_KEY, connection_error, split_params, vendor_message

DEFAULT_MAX_TOKENS = 1024
SYSTEM_ROLES = frozenset({"system", "developer"})
OPENAI_ONLY = frozenset({
    "seed", "response_format", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
    "n", "user", "max_completion_tokens", "reasoning_effort", "parallel_tool_calls", "store", "modalities",
})  # fmt: skip
JSON_INSTRUCTION = "Respond with a single JSON object and nothing else."


@functools.cache
def _sdk_params() -> frozenset[str]:
    names = set(inspect.signature(AsyncMessages.create).parameters)
    names -= {"self", "messages", "model", "stream", "system", "max_tokens"}
    # Read from the installed SDK: SDK versions differ (some take ``temperature`` as an argument, some do not);
    # whatever this one does not take travels in ``extra_body`` unchanged.
    return frozenset(names - {"extra_headers", "extra_query", "extra_body", "timeout"})


def from_spec(spec: ClientSpec) -> AnthropicClient:
    """The client of an ``anthropic`` connection (``providers.service.make_client``)."""
    return AnthropicClient(
        spec.base_url, spec.api_key, spec.timeout, default_headers=dict(spec.headers), host_policy=spec.host_policy
    )


class AnthropicClient:
    kind = "anthropic"

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        *,
        default_headers: Mapping[str, str] | None = None,
        host_policy: HostPolicy | None = None,
    ) -> None:
        self.base_url = base_url
        self._api_key = api_key
        http_client: Any = guarded_client("anthropic", host_policy or HostPolicy(), timeout)
        # An explicit key (never None) stops the SDK reading ANTHROPIC_API_KEY or profiles from the server's env.
        self._sdk = anthropic.AsyncAnthropic(
            base_url=base_url, api_key=api_key or NO_KEY, timeout=timeout, max_retries=0,
            default_headers=dict(default_headers or {}), http_client=http_client,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"AnthropicClient(base_url={self.base_url!r})"

    def _arguments(self, request: CompletionRequest) -> dict[str, Any]:
        system = [m["content"] for m in request.messages if m.get("role") in SYSTEM_ROLES]
        if request.json_output:
            system.append(JSON_INSTRUCTION)
        messages = [
            {"role": m["role"], "content": m["content"]} for m in request.messages if m.get("role") not in SYSTEM_ROLES
        ]
        params = {k: v for k, v in request.params.items() if k not in OPENAI_ONLY}
        max_tokens = params.pop("max_tokens", None) or DEFAULT_MAX_TOKENS
        if (stop := params.pop("stop", None)) is not None:
            params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        sdk_params, extra = split_params(params, _sdk_params())
        arguments: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": int(max_tokens),
                                     **sdk_params}  # fmt: skip
        if system:
            arguments["system"] = "\n\n".join(system)
        if extra:
            arguments["extra_body"] = extra
        return arguments

    async def complete(self, request: CompletionRequest) -> Completion:
        arguments = self._arguments(request)
        started = time.perf_counter()
        try:
            response = await self._sdk.messages.create(**arguments)
        except anthropic.AnthropicError as exc:
            raise self._error(exc) from None  # the SDK exception holds the request, whose headers carry the key
        latency_ms = (time.perf_counter() - started) * 1000
        reply = read_reply(_Message, response, "anthropic")
        text = "".join(block.text or "" for block in reply.content if block.type == "text")
        usage = reply.usage
        return Completion(
            text=text, model=reply.model or request.model,
            tokens_in=usage.input_tokens if usage else None, tokens_out=usage.output_tokens if usage else None,
            latency_ms=latency_ms,
        )  # fmt: skip

    def _error(self, exc: anthropic.AnthropicError) -> ProviderError:
        if isinstance(exc, anthropic.APITimeoutError):
            return ProviderError("anthropic: the request timed out", retryable=True)
        if isinstance(exc, anthropic.APIConnectionError):
            return connection_error("anthropic", exc)
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            return ProviderError(
                f"anthropic: HTTP {status}: {redact(vendor_message(exc.body), self._api_key)}", status=status,
                retryable=retryable_status(status), retry_after=parse_retry_after(exc.response.headers),
            )  # fmt: skip
        return ProviderError(f"anthropic: {type(exc).__name__}: {redact(str(exc), self._api_key)}")

    async def close(self) -> None:
        await self._sdk.close()


class _Block(Reply):
    type: str | None = None
    text: str | None = None


class _Usage(Reply):
    input_tokens: int | None = None
    output_tokens: int | None = None


class _Message(Reply):
    api = "Anthropic Messages"
    content: list[_Block]
    model: str | None = None
    usage: _Usage | None = None
