"""What the vendor SDK adapters share, kept out of either adapter so that using one SDK never imports
the other (each SDK costs about a second to import; the server imports neither until a connection is used).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agiflow_lab.providers.base import ProviderError
from agiflow_lab.providers.transport import blocked_host

# The SDKs refuse to start without some key, and would otherwise fall back to OPENAI_API_KEY / ANTHROPIC_API_KEY
# from the server's environment — a credential the connection's owner never gave. Keyless servers ignore this one.
NO_KEY = "no-key"
MAX_VENDOR_MESSAGE = 500


def split_params(params: Mapping[str, Any], known: frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters the SDK method takes as arguments, and the rest (sent in ``extra_body``)."""
    sdk = {k: v for k, v in params.items() if k in known and v is not None}
    extra = {k: v for k, v in params.items() if k not in known and v is not None}
    return sdk, extra


def vendor_message(body: object) -> str:
    """The vendor's own error message when the body is a vendor error (JSON with a message), else nothing.

    Quoting any other body would turn a connection to a host that is not a model API into a way of
    reading that host's pages."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:MAX_VENDOR_MESSAGE]
    return "the server did not answer like a model API"


def connection_error(where: str, exc: Exception) -> ProviderError:
    """No detail of why a connection failed (refused, reset, unreachable): that would map the ports of
    whatever host ``base_url`` names. A host this server refuses to call is said so, and is not retried."""
    if (blocked := blocked_host(exc)) is not None:
        return ProviderError(f"{where}: {blocked.args[0]}", retryable=False)
    return ProviderError(f"{where}: could not connect to the server", retryable=True)
