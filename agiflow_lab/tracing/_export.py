"""The OpenTelemetry side of ``tracing.init()``: the exporter, the provider, the instrumentors.

Imported only by ``init()``, so that ``agiflow_lab.tracing`` itself imports without the OpenTelemetry SDK.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

log = logging.getLogger("agiflow_lab.tracing")

# OpenInference instrumentors by the name init() reports: (module, class). Each is used only when both it
# and the library it instruments are installed.
INSTRUMENTORS: dict[str, tuple[str, str]] = {
    "openai": ("openinference.instrumentation.openai", "OpenAIInstrumentor"),
    "anthropic": ("openinference.instrumentation.anthropic", "AnthropicInstrumentor"),
    "langchain": ("openinference.instrumentation.langchain", "LangChainInstrumentor"),
    "llama_index": ("openinference.instrumentation.llama_index", "LlamaIndexInstrumentor"),
    "litellm": ("openinference.instrumentation.litellm", "LiteLLMInstrumentor"),
    "bedrock": ("openinference.instrumentation.bedrock", "BedrockInstrumentor"),
    "mistralai": ("openinference.instrumentation.mistralai", "MistralAIInstrumentor"),
    "groq": ("openinference.instrumentation.groq", "GroqInstrumentor"),
    "vertexai": ("openinference.instrumentation.vertexai", "VertexAIInstrumentor"),
    "google_genai": ("openinference.instrumentation.google_genai", "GoogleGenAIInstrumentor"),
    "dspy": ("openinference.instrumentation.dspy", "DSPyInstrumentor"),
    "haystack": ("openinference.instrumentation.haystack", "HaystackInstrumentor"),
    "crewai": ("openinference.instrumentation.crewai", "CrewAIInstrumentor"),
    "openai_agents": ("openinference.instrumentation.openai_agents", "OpenAIAgentsInstrumentor"),
}


class Switchable(SpanProcessor):
    """Our exporting processor as the provider holds it. A provider cannot drop a processor, so after
    ``shutdown()`` this one stays in its list but passes nothing on (and the dead exporter logs nothing)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.active = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.active:
            self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        if self.active:
            self.active = False
            self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis) if self.active else True


def start(
    target: str, headers: dict[str, str], service_name: str | None, batch: bool
) -> tuple[TracerProvider, Switchable]:
    """Add an exporter to ``target`` to the global provider (made first if there is none); (provider, processor)."""
    exporter = OTLPSpanExporter(endpoint=target, headers=headers)
    processor = Switchable(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # the app's own, or ours from before a shutdown(): add to it
        provider = current
    else:
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name} if service_name else {}))
        trace.set_tracer_provider(provider)
    provider.add_span_processor(processor)
    return provider, processor


def instrument(provider: TracerProvider) -> dict[str, Any]:
    """Turn on every installed OpenInference instrumentor whose library is installed; {name: instrumentor}."""
    try:
        from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
    except ImportError:  # comes with every instrumentor: without it, none is installed
        return {}
    done: dict[str, Any] = {}
    for name, (module, cls) in INSTRUMENTORS.items():
        try:
            instrumentor = getattr(importlib.import_module(module), cls)()
        except (ImportError, AttributeError):
            continue  # not installed
        conflict = get_dependency_conflicts(instrumentor.instrumentation_dependencies())
        if conflict is not None:  # the instrumentor is there but its library is not (or is too old)
            log.debug("not instrumenting %s: %s", name, conflict)
            continue
        if instrumentor.is_instrumented_by_opentelemetry:
            log.info("%s was already instrumented; leaving it as it is", name)
            continue
        try:
            instrumentor.instrument(tracer_provider=provider)
        except Exception:  # one broken instrumentor must not stop the app or the others
            log.warning("instrumenting %s failed", name, exc_info=True)
            continue
        done[name] = instrumentor
    return done
