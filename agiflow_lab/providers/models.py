"""The model-connection registry's contract: request and response models.

The API key is write-only: it arrives as ``api_key`` (a ``SecretStr``, so reprs, logs and validation
errors show asterisks) and no response model has a field that could carry it back — only
``has_api_key``. Request models set ``hide_input_in_errors`` so a 422 logged by the server cannot quote it.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from agiflow_lab.providers.prices import PriceSource

ConnectionName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", description="Unique within the project")
]
ConnectionKind = Literal["openai", "azure_openai", "anthropic"]
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_]{0,99}$")]
# Credentials belong in api_key (encrypted); headers are stored and shown in plain text.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"})


def _check_base_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parsed.username or parsed.password:
        raise ValueError("must not contain credentials; use api_key")
    if parsed.fragment:
        raise ValueError("must not have a #fragment")
    return value.rstrip("/")


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if name.lower() in CREDENTIAL_HEADERS:
            raise ValueError(f"header {name!r} carries a credential; put the key in api_key, which is encrypted")
    return value


BaseUrl = Annotated[str, Field(max_length=2000), AfterValidator(_check_base_url)]
Headers = Annotated[
    dict[HeaderName, Annotated[str, Field(max_length=2000)]], Field(max_length=20), AfterValidator(_check_headers)
]


class ConnectionOptions(BaseModel):
    """Non-secret settings: stored as JSON and returned as they are."""

    model_config = ConfigDict(extra="forbid")
    api_version: str | None = Field(None, max_length=50, description="Azure OpenAI API version (required there)")
    headers: Headers = Field(default_factory=dict, description="Extra HTTP headers for every call (no credentials)")


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    name: ConnectionName
    kind: ConnectionKind
    base_url: BaseUrl | None = Field(None, description="null: the vendor's default endpoint")
    default_model: ModelName | None = None
    description: str = Field("", max_length=2000)
    options: ConnectionOptions = Field(default_factory=ConnectionOptions)
    api_key: SecretStr | None = Field(None, description="Write-only; stored encrypted, never returned")


class ConnectionUpdate(BaseModel):
    """PATCH: omitted fields keep their value; ``null`` clears ``base_url``, ``default_model`` or ``api_key``.
    The name and kind are fixed: runs refer to connections by name, and a key belongs to one vendor."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    base_url: BaseUrl | None = None
    default_model: ModelName | None = None
    description: str = Field("", max_length=2000)
    options: ConnectionOptions = Field(default_factory=ConnectionOptions)
    api_key: SecretStr | None = Field(None, description="Write-only; omit to keep, null to clear")


class Connection(BaseModel):
    name: str
    kind: Literal["openai", "azure_openai", "anthropic", "echo"]
    base_url: str | None
    default_model: str | None
    description: str
    options: dict[str, Any]
    has_api_key: bool
    builtin: bool = Field(False, description="The built-in echo connection: always there, cannot be changed")
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ConnectionList(BaseModel):
    items: list[Connection]


@dataclass(frozen=True)
class ConnectionRef:
    """What a run pins about a connection; ``id`` is None for the built-in echo."""

    id: int | None
    name: str
    kind: str
    default_model: str | None
    builtin: bool


class ConnectionTest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelName | None = Field(None, description="Default: the connection's default_model")
    prompt: str = Field("Reply with the single word: OK", min_length=1, max_length=2000)
    max_tokens: int | None = Field(
        None, ge=1, le=1024, description="Default: the provider's (OpenAI reasoning models refuse max_tokens)"
    )
    timeout: float = Field(30.0, gt=0, le=120)


class ConnectionTestResult(BaseModel):
    ok: bool
    connection: str
    model: str
    latency_ms: float = Field(description="Wall time of the call, including a failed one")
    output: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    error: str | None = None
    status: int | None = Field(None, description="The provider's HTTP status when it answered with an error")
    retryable: bool | None = None


class PriceSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_per_million: float = Field(ge=0, le=100_000, description="USD per million input tokens")
    output_per_million: float = Field(ge=0, le=100_000, description="USD per million output tokens")


class PriceRow(BaseModel):
    model: str
    input_per_million: float
    output_per_million: float
    source: PriceSource


class PriceTable(BaseModel):
    items: list[PriceRow]
    shipped_as_of: str = Field(description="When the shipped prices were taken from the vendors' pages")
