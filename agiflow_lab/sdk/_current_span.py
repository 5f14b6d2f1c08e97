"""Marks the OpenTelemetry span in progress with the prompt version an app rendered inside it.

The trace store reads ``agiflow.prompt.name`` / ``agiflow.prompt.version`` into each span's prompt columns
(``agiflow_lab.traces.semconv``), which is how a trace is found by the prompt that produced it.

OpenTelemetry is optional for the SDK: this looks only if the app has already imported
``opentelemetry.trace`` (an app that has not cannot have a span in progress), so rendering a prompt
never imports it, and works the same without it installed.
"""

from __future__ import annotations

import sys

PROMPT_NAME = "agiflow.prompt.name"
PROMPT_VERSION = "agiflow.prompt.version"
PROMPT_LABEL = "agiflow.prompt.label"


def mark_prompt(name: str, version: int, label: str | None) -> None:
    """Set the prompt attributes on the current span, if there is one and it is recording."""
    if "opentelemetry.trace" not in sys.modules:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute(PROMPT_NAME, name)
    span.set_attribute(PROMPT_VERSION, version)
    if label is not None:
        span.set_attribute(PROMPT_LABEL, label)
