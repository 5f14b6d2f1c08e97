"""Spans sent the way an instrumented app sends them: the real OpenTelemetry SDK's OTLP/HTTP exporter."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode


def export(
    endpoint: str,
    key: str,
    *,
    root: str = "answer question",
    model: str = "gpt-4o",
    question: str | None = None,
    answer: str | None = None,
    failed: bool = False,
    root_attributes: dict[str, str] | None = None,
) -> str:
    """Two spans (a chat call inside a request) through the real SDK; returns the trace id.

    ``question``/``answer`` become the root's input/output (``input.value``/``output.value``), which the
    trace list previews and searches; ``failed`` marks the chat call as an error. Blocking: call it in a thread."""
    provider = TracerProvider(resource=Resource.create({"service.name": "qa-app"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers={"Authorization": f"Bearer {key}"}))
    )
    tracer = provider.get_tracer("agiflow-tests")
    with tracer.start_as_current_span(root) as span:
        span.set_attribute("session.id", "s-1")
        for name, value in (root_attributes or {}).items():
            span.set_attribute(name, value)
        if question is not None:
            span.set_attribute("input.value", question)
        if answer is not None:
            span.set_attribute("output.value", answer)
        with tracer.start_as_current_span(f"chat {model}") as call:
            call.set_attribute("gen_ai.operation.name", "chat")
            call.set_attribute("gen_ai.request.model", model)
            call.set_attribute("gen_ai.usage.input_tokens", 1000)
            call.set_attribute("gen_ai.usage.output_tokens", 100)
            if failed:
                call.set_status(Status(StatusCode.ERROR, "provider said no"))
    provider.shutdown()
    return format(span.get_span_context().trace_id, "032x")
