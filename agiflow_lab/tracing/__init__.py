"""Send an app's (or a notebook's) OpenTelemetry traces to AGIFlow Lab in one call.

```python
from agiflow_lab import tracing

tracing.init()  # in a notebook: finds its Jupyter server; elsewhere AGIFLOW_URL + AGIFLOW_API_KEY
```

``init`` sets up the OpenTelemetry SDK (a ``TracerProvider`` with a batching OTLP/HTTP exporter to the
server's ``/otel/v1/traces``), makes it the global tracer provider and instruments whichever OpenInference
instrumentors are installed (OpenAI, Anthropic, LangChain, LlamaIndex, ...). The server and credential are
found as ``Client()`` finds them. A project API key (``agf_...``) carries its project; a Jupyter token does
not, so the spans name one in the ``x-agiflow-project`` header: ``project``, else ``AGIFLOW_PROJECT``, else
``default``.

Needs the ``tracing`` extra (``pip install 'agiflow-lab[tracing]'``): the OpenTelemetry SDK, its OTLP/HTTP
exporter and the OpenAI instrumentor. Importing this module loads none of them; ``init()`` does.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agiflow_lab.keys.secrets import PREFIX as KEY_PREFIX
from agiflow_lab.sdk.discovery import discover
from agiflow_lab.sdk.transport import Endpoint

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from agiflow_lab.tracing._export import Switchable

log = logging.getLogger(__name__)

OTLP_PATH = "otel/v1/traces"
PROJECT_HEADER = "x-agiflow-project"  # what the receiver reads when the credential is not a project key
PROJECT_ENV = "AGIFLOW_PROJECT"
DEFAULT_PROJECT = "default"


@dataclass
class _Tracing:
    provider: TracerProvider
    processor: Switchable
    endpoint: str
    instrumentors: dict[str, Any] = field(default_factory=dict)


_lock = threading.Lock()
_state: _Tracing | None = None


def init(
    url: str | None = None,
    api_key: str | None = None,
    project: str | None = None,
    *,
    service_name: str | None = None,
    instrument: bool = True,
    batch: bool = True,
) -> TracerProvider:
    """Export this process's spans to AGIFlow Lab; returns the global ``TracerProvider``.

    Once per process: a second call returns the same provider and changes nothing (its arguments are
    ignored, with a warning if any are given), so spans are never exported twice; ``shutdown()`` first to
    start over. If the app already set an SDK ``TracerProvider`` as the global one, the exporter is added
    to it instead of replacing it. ``batch=False`` exports each span as it ends (slower; for short scripts
    and debugging). ``service_name`` defaults to ``OTEL_SERVICE_NAME``. ``tracing.instrumented()`` lists
    the instrumentors turned on.
    """
    global _state
    with _lock:
        if _state is not None:
            if url or api_key or project or service_name:
                log.warning("agiflow_lab.tracing.init() was already called: exporting to %s as before", _state.endpoint)
            return _state.provider
        endpoint = discover(url, api_key)
        if endpoint.unix_socket:
            raise RuntimeError(
                f"the Jupyter server ({endpoint.source}) listens on a Unix socket, which the OTLP exporter cannot "
                "reach: set AGIFLOW_URL and AGIFLOW_API_KEY (or pass url and api_key)"
            )
        try:
            from agiflow_lab.tracing import _export
        except ImportError as exc:
            raise ImportError(
                f"agiflow_lab.tracing needs the OpenTelemetry SDK: pip install 'agiflow-lab[tracing]' ({exc})"
            ) from exc
        target = f"{endpoint.api_url}/{OTLP_PATH}"
        provider, processor = _export.start(target, _headers(endpoint, project), service_name, batch)
        _state = _Tracing(provider, processor, target)
        if instrument:
            _state.instrumentors = _export.instrument(provider)
        log.info("exporting spans to %s; instrumented: %s", target, ", ".join(_state.instrumentors) or "nothing")
        return provider


def instrumented() -> list[str]:
    """The instrumentors ``init()`` turned on (``["openai", ...]``); empty before ``init()``."""
    return list(_state.instrumentors) if _state is not None else []


def flush(timeout_millis: int = 30_000) -> bool:
    """Export the spans ended so far now, instead of with the next batch; False if that timed out."""
    state = _state
    return state.processor.force_flush(timeout_millis) if state is not None else True


def shutdown() -> None:
    """Flush, stop exporting and undo the instrumentation; a later ``init()`` starts again.

    The provider stays the global one (OpenTelemetry sets it once per process), so a later ``init()`` adds a
    new exporter to it. Exiting the process flushes without this."""
    global _state
    with _lock:
        state, _state = _state, None
        if state is None:
            return
        for instrumentor in state.instrumentors.values():
            instrumentor.uninstrument()
        state.processor.shutdown()


def _headers(endpoint: Endpoint, project: str | None) -> dict[str, str]:
    headers = {"Authorization": endpoint.authorization}
    named = project or os.environ.get(PROJECT_ENV)
    if not named and not endpoint.secret.startswith(KEY_PREFIX):  # a project key carries its project
        named = DEFAULT_PROJECT
    if named:
        headers[PROJECT_HEADER] = named
    return headers
