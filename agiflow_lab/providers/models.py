"""The model-connection registry's contract: request and response models.

The API key is write-only: it arrives as ``api_key`` (a ``SecretStr``, so reprs, logs and validation
errors show asterisks) and no response model has a field that could carry it back — only
``has_api_key``. Request models set ``hide_input_in_errors`` so a 422 logged by the server cannot quote it.

Custom headers (``options.headers``) are treated the same way. A deny-list of "credential" header names
cannot be complete (``X-Goog-Api-Key``, ``Ocp-Apim-Subscription-Key``, ``X-Auth-Token``, ``Token``, any
gateway's own), and an allow-list would refuse the gateways people need them for; so every header value
is a secret: stored encrypted with the API key's cipher, never returned (responses list
``options.header_names``), never audited or logged. Only the headers the SDK or HTTP itself sets are
refused, and values must be printable ASCII (a CR or LF would start another header).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from agiflow_lab.providers.prices import PriceSource

ConnectionName = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", description="Unique within the project")
]
ConnectionKind = Literal["openai", "azure_openai", "anthropic"]
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")]
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_]{0,99}$")]
# The SDKs send the API key in these; a second value would fight the one from api_key.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key"})
# Framing and routing are HTTP's own business (and Host would aim the request elsewhere).
PROTOCOL_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
    "expect", "proxy-connection",
})  # fmt: skip
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_]{0,99}")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")


def _check_base_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parsed.port  # noqa: B018  # raises on a port out of range or not a number
    except ValueError:
        raise ValueError("must have a port between 0 and 65535") from None
    if parsed.username or parsed.password:
        raise ValueError("must not contain credentials; use api_key")
    if parsed.fragment:
        raise ValueError("must not have a #fragment")
    return value.rstrip("/")


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    """Messages name the header, never its value (values are secrets)."""
    seen: set[str] = set()
    for name, text in value.items():
        lower = name.lower()
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError("a header name is letters, digits, '-' and '_'")
        if lower in CREDENTIAL_HEADERS:
            raise ValueError(f"header {name!r} carries the API key; put the key in api_key")
        if lower in PROTOCOL_HEADERS:
            raise ValueError(f"header {name!r} is set by HTTP itself")
        if lower in seen:
            raise ValueError(f"header {name!r} is given twice")
        seen.add(lower)
        if not _HEADER_VALUE.fullmatch(text):
            raise ValueError(
                f"the value of header {name!r} must be printable ASCII, without control characters such as CR or LF"
            )
    return value


BaseUrl = Annotated[str, Field(max_length=2000), AfterValidator(_check_base_url)]
Headers = Annotated[
    dict[HeaderName, Annotated[str, Field(max_length=2000)]], Field(max_length=20), AfterValidator(_check_headers)
]


class ConnectionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    api_version: str | None = Field(None, max_length=50, description="Azure OpenAI API version (required there)")
    headers: Headers = Field(
        default_factory=dict,
        description="Extra HTTP headers for every call. Write-only like api_key: stored encrypted, only their "
        "names are returned. On PATCH: omit to keep them, {} to remove them all.",
    )


class ConnectionOptionsView(BaseModel):
    api_version: str | None = None
    header_names: list[str] = Field(default_factory=list, description="The custom headers; values are write-only")


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
    ``options`` replaces ``api_version``, and the headers only when ``options.headers`` is given: values are
    never shown, so a client that sends back what it read must not wipe them.
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
    options: ConnectionOptionsView
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
