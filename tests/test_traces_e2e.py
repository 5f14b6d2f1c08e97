"""Spans from an instrumented app, end to end: the OpenTelemetry SDK's own exporter posts to the receiver,
which publishes them on the bus; the supervised worker's span writer stores them, once."""

from __future__ import annotations

import asyncio
from typing import Any

from agiflow_lab.db.database import Database
from agiflow_lab.traces.store import PostgresSpanStore
from tests.support.api import Api
from tests.support.polling import until
from tests.support.traces import export


async def test_spans_exported_by_the_otel_sdk_are_stored_once(api: Api, project: str, db_url: str) -> None:
    key = await api.new_key(project, "editor")
    trace_id = await asyncio.to_thread(export, f"{api.server.api}/otel/v1/traces", key)

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
