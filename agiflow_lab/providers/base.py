"""The contract every model provider client meets, so runs and judges never see a vendor SDK.

A client turns one chat request into one completion. Retries, pricing and credentials live around it
(``retry.py``, ``prices.py``, ``service.py``), not inside each vendor's adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from agiflow_lab.providers.hosts import HostPolicy

R = TypeVar("R", bound="Reply")


@dataclass(frozen=True)
class CompletionRequest:
    messages: list[dict[str, str]]  # [{"role": "system"|"user"|"assistant", "content": "..."}]
    model: str
    params: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens, top_p, stop, seed
    json_output: bool = False  # ask for a JSON object (judges); adapters map it to the vendor's switch


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    tokens_in: int | None
    tokens_out: int | None
    latency_ms: float  # of the successful attempt
    attempts: int = 1


class ProviderError(Exception):
    """A call that failed; ``retryable`` says whether waiting and trying again may help (429, 5xx, timeouts).

    ``attempts`` is how many tries ended in this error (set by ``complete_with_retries``), so a caller
    records what really happened rather than guessing from the policy.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts


class ProviderClient(Protocol):
    kind: str

    async def complete(self, request: CompletionRequest) -> Completion: ...

    async def close(self) -> None: ...


class Reply(BaseModel):
    """The fields of a vendor reply a client reads. Vendor SDKs build replies without validating them, so a
    server that is not the API its connection claims (an OpenAI-style body on an Anthropic connection, an
    HTML page) would otherwise surface as a TypeError deep in the client: a 500 instead of a failed call."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")
    api: ClassVar[str] = "model"  # whose reply this is, for the error message


def read_reply(shape: type[R], response: Any, where: str) -> R:
    """``response``: the SDK's reply object, or the reply's JSON body as bytes."""
    try:
        if isinstance(response, bytes):
            return shape.model_validate_json(response)
        return shape.model_validate(response, from_attributes=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        path = ".".join(str(part) for part in first["loc"]) or "body"
        message = f"{where}: the server did not answer like the {shape.api} API ({path}: {first['msg']})"
        raise ProviderError(message) from None


@dataclass(frozen=True)
class ClientSpec:
    """Everything needed to build a client (each adapter module's ``from_spec``); ``repr`` leaves the key
    and the header values out."""

    kind: str
    base_url: str | None
    options: dict[str, Any]
    timeout: float
    api_key: str | None = field(default=None, repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    host_policy: HostPolicy = field(default_factory=HostPolicy)
