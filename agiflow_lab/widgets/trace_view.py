"""``TraceView``: one trace's span tree; the selected span's input, output and attributes beside it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import traitlets as t
from typing_extensions import TypedDict

from agiflow_lab.sdk.trace import Trace
from agiflow_lab.traces.results import TraceSpan
from agiflow_lab.widgets._base import STATIC, Widget, messages_of, record, rows
from agiflow_lab.widgets._session import Session

if TYPE_CHECKING:
    from agiflow_lab.sdk.client import Client


class SpanRow(TypedDict):
    span_id: str
    parent_span_id: str | None
    depth: int  # in the tree, depth first in start order
    name: str
    span_type: str
    status: str
    status_message: str | None
    duration_ms: float
    model: str | None
    tokens_in: int | None
    tokens_out: int | None
    cost_usd: float | None


class SpanDetail(TypedDict):
    span_id: str
    name: str
    input: str | None
    output: str | None
    attributes: str  # JSON text
    events: str  # JSON text


class ScoreRow(TypedDict):
    name: str
    value: str
    span_id: str | None
    source: str
    comment: str | None


class Select(TypedDict):
    type: Literal["select"]
    span_id: str


class TraceView(Widget[Select]):
    """``TraceView(client, trace_id)`` fetches every span of the trace; ``TraceView.of(trace)`` shows one the SDK
    has already fetched. The root (else the first span) starts selected."""

    _esm = STATIC / "trace_view.js"
    messages = messages_of(Select)

    trace_id = t.Unicode("").tag(sync=True)
    spans: t.List[SpanRow] = rows(SpanRow)
    scores: t.List[ScoreRow] = rows(ScoreRow)
    selected = t.Unicode("").tag(sync=True)
    detail = record(SpanDetail)

    def __init__(self, client: Client | Session | None, trace_id: str, *, trace: Trace | None = None) -> None:
        super().__init__(trace_id=trace_id)
        if trace is None:
            if client is None:
                raise TypeError("give a client, or the trace")
            trace = Session.of(client).traces.get(trace_id)
        self._trace = trace
        self.spans = [_row(depth, span) for depth, span in trace.walk()]
        self.scores = [
            ScoreRow(name=s.name, value=json.dumps(s.value), span_id=s.span_id, source=s.source, comment=s.comment)
            for s in trace.scores
        ]  # fmt: skip
        first = trace.root or (trace.spans[0] if trace.spans else None)
        if first is not None:
            self.select(first.span_id)

    @classmethod
    def of(cls, trace: Trace) -> TraceView:
        return cls(None, trace.trace_id, trace=trace)

    def dispatch(self, message: Select) -> None:
        self.select(message["span_id"])

    def select(self, span_id: str) -> None:
        span = self._trace.span(span_id)
        self.selected = span_id
        self.detail = SpanDetail(span_id=span.span_id, name=span.name, input=span.input, output=span.output,
                                 attributes=_json(span.attributes), events=_json([e.model_dump(mode="json")
                                                                                  for e in span.events]))  # fmt: skip


def _row(depth: int, span: TraceSpan) -> SpanRow:
    return SpanRow(
        span_id=span.span_id, parent_span_id=span.parent_span_id, depth=depth, name=span.name,
        span_type=span.span_type, status=span.status, status_message=span.status_message,
        duration_ms=span.duration_ms, model=span.model, tokens_in=span.tokens_in, tokens_out=span.tokens_out,
        cost_usd=span.cost_usd,
    )  # fmt: skip


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)
