"""Spans from an instrumented app, end to end: the OpenTelemetry SDK's own exporter posts to the receiver,
which publishes them on the bus; the supervised worker's span writer stores them, once."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agiflow_lab.db.database import Database
from agiflow_lab.traces.store import PostgresSpanStore
from tests.support.api import Api
from tests.support.polling import until


def _export(endpoint: str, key: str) -> str:
    """Two spans (a chat call inside a request) through the real SDK; returns the trace id."""
    provider = TracerProvider(resource=Resource.create({"service.name": "qa-app"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers={"Authorization": f"Bearer {key}"}))
    )
    tracer = provider.get_tracer("agiflow-tests")
    with tracer.start_as_current_span("answer question") as root:
        root.set_attribute("session.id", "s-1")
        with tracer.start_as_current_span("chat gpt-4o") as call:
            call.set_attribute("gen_ai.operation.name", "chat")
            call.set_attribute("gen_ai.request.model", "gpt-4o")
            call.set_attribute("gen_ai.usage.input_tokens", 1000)
            call.set_attribute("gen_ai.usage.output_tokens", 100)
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


async def test_spans_exported_by_the_otel_sdk_are_stored_once(api: Api, project: str, db_url: str) -> None:
    key = await api.new_key(project, "editor")
    trace_id = await asyncio.to_thread(_export, f"{api.server.api}/otel/v1/traces", key)

    db = Database(db_url, min_size=1, max_size=2)
    await db.open()
    try:
        async with db.connection() as conn:
            row = await (await conn.execute("SELECT id FROM control.projects WHERE slug = %s", (project,))).fetchone()
        assert row is not None
        store = PostgresSpanStore(db)

        async def stored() -> Any:
            page = await store.get_trace(int(row["id"]), trace_id)
            return page if len(page.spans) == 2 else None

        page = await until(stored, "both spans to be stored by the span writer", timeout=60)
        by_name = {s.name: s for s in page.spans}
        call = by_name["chat gpt-4o"]
        assert (call.model, call.tokens_in, call.tokens_out, call.span_type) == ("gpt-4o", 1000, 100, "chat")
        assert call.cost_usd is not None and call.cost_usd > 0  # priced from the shipped table
        assert call.parent_span_id == by_name["answer question"].span_id
        assert by_name["answer question"].service_name == "qa-app"
    finally:
        await db.close()
