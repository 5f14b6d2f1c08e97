"""Where the three decoders meet: the checks every span passes, and the record it becomes.

Each decoder knows its own wire shapes (bytes or hex ids, enum ints or names, nanoseconds or ISO text);
from here on a span is the same whichever way it came, so the rules below exist once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agiflow_lab.traces.records import Attributes, Rejected, SpanEvent, SpanHead, SpanKind, SpanRecord, SpanStatus
from agiflow_lab.traces.semconv import Pricer, normalise

_INT64_MAX = 2**63 - 1


class SpanProblem(ValueError):
    """One span cannot be read; the message is its reject reason."""


@dataclass(frozen=True, slots=True)
class Origin:
    """What every span of one resource and scope shares, built once for all of them."""

    service_name: str | None
    scope_name: str | None
    resource_attributes: Attributes

    @classmethod
    def of(cls, resource_attributes: Attributes, scope_name: str | None) -> Origin:
        service = resource_attributes.get("service.name")
        return cls(service if isinstance(service, str) and service else None, scope_name or None, resource_attributes)


class _Rejects:
    """A request's rejects, with the running span index that ``Rejected`` reports."""

    __slots__ = ("rejected", "index")

    def __init__(self) -> None:
        self.rejected: list[Rejected] = []
        self.index = 0

    def reject(self, reason: str) -> None:
        self.rejected.append(Rejected(self.index, reason))
        self.index += 1


class HeadSink(_Rejects):
    """What checking a request keeps of each span it would take (``SpanHead``): the receiver's pass, which
    rejects exactly what ``BatchSink`` would, but reads no attributes and builds no record."""

    __slots__ = ("spans",)

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[SpanHead] = []

    def add_head(self, trace_id: str, name: str, start_ns: int, end_ns: int) -> None:
        if problem := _time_or_name_problem(name, start_ns, end_ns):
            self.reject(problem)
            return
        self.spans.append(SpanHead(trace_id, start_ns))
        self.index += 1


class BatchSink(_Rejects):
    """One request's spans and rejects."""

    __slots__ = ("spans", "pricer")

    def __init__(self, pricer: Pricer) -> None:
        super().__init__()
        self.spans: list[SpanRecord] = []
        self.pricer = pricer

    def add_read(self, origin: Origin, read: Callable[[Any], dict[str, Any]], span: Any) -> None:
        """Add a span from a JSON decoder: what ``read`` cannot make sense of rejects that span alone.

        JSON arrives as whatever types the sender chose, so a wrong one surfaces as a TypeError or
        similar deep in ``read``; only that span pays for it. ``OtlpError`` (too deep) still fails the body."""
        try:
            fields = read(span)
        except SpanProblem as e:
            self.reject(str(e))
            return
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
            self.reject(f"malformed span ({type(e).__name__}: {e})"[:200])
            return
        self.add(origin, **fields)

    def add(
        self,
        origin: Origin,
        *,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        name: str,
        kind: SpanKind,
        start_ns: int,
        end_ns: int,
        status: SpanStatus,
        status_message: str,
        attributes: Attributes,
        events: list[SpanEvent],
    ) -> None:
        """Record the span, or reject it if it has no name or its times are impossible."""
        if problem := _time_or_name_problem(name, start_ns, end_ns):
            self.reject(problem)
            return
        sem = normalise(attributes, events, self.pricer)
        # An exception event marks a span failed unless its code said OK on purpose (OTel: OK is final).
        if sem.exception is not None and status == "unset":
            status = "error"
        message = status_message or (sem.exception if status == "error" else None)
        # Positional, in field order: keywords cost more on a call made once per span (the tests pin every
        # field by name).
        self.spans.append(
            SpanRecord(
                trace_id,
                span_id,
                parent_span_id,
                name,
                kind,
                start_ns,
                end_ns,
                status,
                message,
                origin.service_name,
                origin.scope_name,
                sem.span_type,
                sem.model,
                sem.provider,
                sem.input,
                sem.output,
                sem.tokens_in,
                sem.tokens_out,
                sem.cost_usd,
                sem.session_id,
                sem.user_id,
                sem.tags,
                sem.prompt_name,
                sem.prompt_version,
                attributes,
                events,
                origin.resource_attributes,
            )
        )
        self.index += 1


def _time_or_name_problem(name: str, start_ns: int, end_ns: int) -> str | None:
    if not name:
        return "missing name"
    if start_ns <= 0:
        return "missing start time"
    if end_ns < start_ns:
        return "end before start"
    if end_ns > _INT64_MAX:  # fixed64 on the wire, bigint in the store (past the year 2262)
        return "time out of range"
    return None
