"""``Trace``: one trace's spans, all pages of them, with the tree their parent links make."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from agiflow_lab.sdk.frames import model_frame
from agiflow_lab.traces.results import Score, TraceSpan

if TYPE_CHECKING:
    import pandas as pd

    from agiflow_lab.widgets._display import Bundle


class Trace:
    """``spans`` in start order; ``root`` is the span without a parent; ``children(span)`` its direct children;
    ``scores`` the trace's and its spans' scores, newest first.

    A span whose parent has not been stored (yet) is shown at the top of the tree, beside the root.
    ``print(trace)`` draws the tree; in a notebook the trace shows itself as a ``TraceView``.
    """

    def __init__(self, trace_id: str, spans: list[TraceSpan], scores: list[Score] | None = None) -> None:
        self.trace_id = trace_id
        self.spans = spans
        self.scores = scores or []
        self._by_id = {s.span_id: s for s in spans}
        self._children: dict[str | None, list[TraceSpan]] = {}
        for span in spans:
            parent = span.parent_span_id if span.parent_span_id in self._by_id else None
            self._children.setdefault(parent, []).append(span)

    @property
    def root(self) -> TraceSpan | None:
        """The span without a parent; None while the root has not arrived (an unfinished request)."""
        return next((s for s in self.spans if s.parent_span_id is None), None)

    @property
    def tops(self) -> list[TraceSpan]:
        """The root and any span whose parent this trace does not hold."""
        return list(self._children.get(None, []))

    def span(self, span_id: str) -> TraceSpan:
        return self._by_id[span_id]

    def children(self, span: TraceSpan | str) -> list[TraceSpan]:
        span_id = span if isinstance(span, str) else span.span_id
        return list(self._children.get(span_id, []))

    def walk(self) -> Iterator[tuple[int, TraceSpan]]:
        """Depth first, children in start order: ``(depth, span)``."""
        stack = [(0, s) for s in reversed(self.tops)]
        while stack:
            depth, span = stack.pop()
            yield depth, span
            stack.extend((depth + 1, c) for c in reversed(self._children.get(span.span_id, [])))

    def to_dataframe(self) -> pd.DataFrame:
        """One row per span (every field of the API's span, times as UTC timestamps), in start order."""

        return model_frame(self.spans, TraceSpan)

    def tree(self) -> str:
        lines = []
        for depth, span in self.walk():
            indent = "  " * (depth - 1) + "└─ " if depth else ""
            lines.append(f"{indent}{_line(span)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        head = self.root or (self.spans[0] if self.spans else None)
        name = f" {head.name!r}" if head else ""
        return f"<Trace {self.trace_id}{name}: {len(self.spans)} spans>\n{self.tree()}"

    def _repr_html_(self) -> str:
        from agiflow_lab.widgets._html import trace_html

        return trace_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        from agiflow_lab.widgets._display import bundle

        def view() -> Any:
            from agiflow_lab.widgets import TraceView

            return TraceView.of(self)

        return bundle(self._repr_html_(), repr(self), view)


def _line(span: TraceSpan) -> str:
    facts: list[str] = [span.span_type] if span.span_type != "other" else []
    if span.model:
        facts.append(span.model)
    if span.tokens_in is not None or span.tokens_out is not None:
        facts.append(f"{span.tokens_in or 0}→{span.tokens_out or 0} tokens")
    if span.prompt_name:
        facts.append(f"prompt {span.prompt_name}" + (f" v{span.prompt_version}" if span.prompt_version else ""))
    detail = f" [{', '.join(facts)}]" if facts else ""
    error = ""
    if span.status == "error":
        error = f"  ERROR{': ' + span.status_message if span.status_message else ''}"
    return f"{span.name}{detail} {span.duration_ms:.1f} ms{error}"
