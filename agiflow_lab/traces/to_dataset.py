"""Production spans become evaluation items: a span's input and output added to a dataset.

An item's input is the span's prompt variables when the instrumentation recorded them (OpenInference's
``llm.prompt_template.variables``, a JSON object), so the item fits an evaluation of the same prompt
template; otherwise ``{"input": <the span's input text>}``. The span's output is the expected answer,
to be corrected in the dataset where it was wrong. The item id is ``<trace id>:<span id>``: adding a span
twice updates its item rather than duplicating it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.authz.policy import READ
from agiflow_lab.core.actor import Actor
from agiflow_lab.datasets.models import DatasetVersion, ItemIn, ItemsWrite
from agiflow_lab.datasets.service import DatasetService
from agiflow_lab.errors import NotFound
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.traces.ingest import RESOURCE
from agiflow_lab.traces.records import SpanRecord
from agiflow_lab.traces.scores import SpanId, TraceId
from agiflow_lab.traces.store import SpanStore

MAX_SPANS = 1000
VARIABLES = "llm.prompt_template.variables"


class SpanRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trace_id: TraceId
    span_id: SpanId


class SpansToDataset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spans: list[SpanRef] = Field(min_length=1, max_length=MAX_SPANS)
    message: str = Field("", max_length=2000)


def _variables(span: SpanRecord) -> dict[str, Any] | None:
    raw = span.attributes.get(VARIABLES)
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) and raw else None


def item_of(span: SpanRecord) -> ItemIn:
    metadata = {"trace_id": span.trace_id, "span_id": span.span_id, "span_name": span.name, "model": span.model,
                "prompt_name": span.prompt_name, "prompt_version": span.prompt_version}  # fmt: skip
    return ItemIn(
        id=f"{span.trace_id}:{span.span_id}",
        input=_variables(span) or {"input": span.input or ""},
        expected=span.output,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


class SpanItems:
    def __init__(self, projects: ProjectService, authz: Authorizer, store: SpanStore, datasets: DatasetService) -> None:
        self.projects = projects
        self.authz = authz
        self.store = store
        self.datasets = datasets

    async def add(self, actor: Actor, project: str, dataset: str, body: SpansToDataset) -> DatasetVersion:
        """A new version of ``dataset`` with the spans' items appended, in the order given; 404 naming the
        spans not stored (nothing is written then). Writing the dataset is checked by the route; reading
        the traces is checked here."""
        self.authz.check(actor, project, RESOURCE, READ)
        project_id = await self.projects.resolve_id(project)
        keys = list(dict.fromkeys((r.trace_id, r.span_id) for r in body.spans))
        found = {(s.trace_id, s.span_id): s for s in await self.store.get_spans(project_id, keys)}
        if missing := [k for k in keys if k not in found]:
            raise NotFound(
                f"{len(missing)} of the spans are not stored in project {project!r}",
                {"field": "spans", "missing": [{"trace_id": t, "span_id": s} for t, s in missing[:20]]},
            )
        message = body.message or f"{len(keys)} span(s) from traces"
        items = ItemsWrite(items=[item_of(found[k]) for k in keys], mode="append", message=message)
        return await self.datasets.write_items(actor, project, dataset, items)
