"""An evaluation run's items as traces: one trace per item, so a run's items open in the trace explorer.

Each item's trace has a root span (the item: its input and output, the run as the session, the prompt's
name and version), a ``chat`` span for the model call (model, tokens, latency, the error if it failed) and
one ``evaluator`` span per evaluator with its score. The evaluators' scores are also stored as scores
(source ``eval``) on the trace, so the trace list filters on them.

The worker builds these from the result rows it writes and puts them on the ``spans`` topic through the
outbox in the same transaction as the results: they reach the span writers like any OTLP export, and an
item has its trace exactly when it has its result. Ids derive from the run and the item, so a trace id
is known from a result row alone (``item_trace_id``) and a redelivered batch is the same spans.

Times: a result row records how long the model call took, not when it started, so the spans end when the
batch is written and start that long before: right to within a batch's write interval (about a second).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agiflow_lab.traces.annotations import NewScore
from agiflow_lab.traces.messages import SpanBatch

SERVICE = "agiflow-evals"
SCOPE = "agiflow_lab.evals"
_SPAN_KIND_INTERNAL, _SPAN_KIND_CLIENT = 1, 3
_STATUS_OK, _STATUS_ERROR = 1, 2
_TEXT_LIMIT = 32_000  # characters of input/output per span; the result row keeps the whole


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def item_trace_id(run_id: str, item_id: str) -> str:
    return _digest("trace", run_id, item_id)


def _span_id(trace_id: str, role: str) -> str:
    return _digest("span", trace_id, role)[:16]


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value if isinstance(value, str) else json.dumps(value, default=str)}


def _attributes(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:_TEXT_LIMIT]


def _span(
    trace_id: str, role: str, parent: str | None, name: str, start_ns: int, end_ns: int, kind: int,
    attributes: Mapping[str, Any], error: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    span: dict[str, Any] = {
        "traceId": trace_id, "spanId": _span_id(trace_id, role), "name": name, "kind": kind,
        "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(max(end_ns, start_ns)),
        "attributes": _attributes(attributes),
        "status": {"code": _STATUS_ERROR, "message": error} if error else {"code": _STATUS_OK},
    }  # fmt: skip
    if parent is not None:
        span["parentSpanId"] = _span_id(trace_id, parent)
    return span


def item_spans(run: Mapping[str, Any], row: Mapping[str, Any], end_ns: int) -> list[dict[str, Any]]:
    """The OTLP/JSON spans of one result row (``ResultRow`` fields)."""
    run_id = str(run["id"])
    trace_id = item_trace_id(run_id, str(row["item_id"]))
    latency_ns = int((row.get("latency_ms") or 0) * 1e6)
    start_ns = end_ns - latency_ns
    model = str(row.get("model") or run["model"])
    common = {"agiflow.eval.run_id": run_id, "agiflow.eval.item_id": str(row["item_id"])}
    root_error = row.get("error")
    spans = [
        _span(trace_id, "item", None, f"eval item {row['item_id']}", start_ns, end_ns, _SPAN_KIND_INTERNAL, {
            **common, "agiflow.span.type": "chain", "agiflow.eval.run_name": run.get("name"),
            "session.id": run_id, "agiflow.prompt.name": run.get("prompt_name"),
            "agiflow.prompt.version": run.get("prompt_version"), "input.value": _text(row.get("input")),
            "output.value": _text(row.get("output")), "agiflow.eval.expected": _text(row.get("expected")),
            "agiflow.eval.passed": bool(row.get("passed")), "agiflow.eval.score": row.get("score"),
        }, root_error),
    ]  # fmt: skip
    if row.get("rendered") is not None:  # rendering worked, so the model was called (or its call failed)
        spans.append(_span(trace_id, "model", "item", f"chat {model}", start_ns, end_ns, _SPAN_KIND_CLIENT, {
            **common, "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.system": run.get("connection_kind"), "gen_ai.usage.input_tokens": row.get("tokens_in"),
            "gen_ai.usage.output_tokens": row.get("tokens_out"), "input.value": _text(row.get("rendered")),
            "output.value": _text(row.get("output")), "agiflow.eval.attempts": row.get("attempts"),
        }, root_error))  # fmt: skip
    for name, result in (row.get("scores") or {}).items():
        result = result if isinstance(result, Mapping) else {}
        spans.append(_span(trace_id, f"evaluator:{name}", "item", f"evaluator {name}", end_ns, end_ns,
                           _SPAN_KIND_INTERNAL, {
            **common, "agiflow.span.type": "evaluator", "agiflow.eval.evaluator": name,
            "agiflow.eval.score": result.get("score"), "agiflow.eval.passed": result.get("passed"),
            "output.value": _text(result.get("explanation")),
        }, result.get("error")))  # fmt: skip
    return spans


def item_scores(run: Mapping[str, Any], row: Mapping[str, Any]) -> list[NewScore]:
    """Each evaluator's score of the item, on its trace: numeric when it gave a number, else its verdict."""
    run_id = str(run["id"])
    trace_id = item_trace_id(run_id, str(row["item_id"]))
    scores = []
    for name, result in (row.get("scores") or {}).items():
        if not isinstance(result, Mapping):
            continue
        score, passed = result.get("score"), result.get("passed")
        value: bool | float | None = None
        if isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score):
            value = float(score)
        elif isinstance(passed, bool):
            value = passed
        if value is not None:
            scores.append(NewScore(trace_id=trace_id, trace_alias=None, span_id=None, name=str(name)[:200],
                                   value=value, source="eval", comment=f"run {run.get('name')} ({run_id})",
                                   author=f"eval-run:{run_id}"))  # fmt: skip
    return scores


MAX_MESSAGE_BYTES = 512 * 1024  # compressed; well under Kafka's default 1 MB message limit


def results_batches(
    project_id: int, run: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], max_bytes: int = MAX_MESSAGE_BYTES
) -> list[SpanBatch]:
    """The rows' traces as OTLP/JSON export requests on the ``spans`` topic, halved until each fits
    ``max_bytes``: an outbox message the bus refuses as too large would stop every message behind it."""
    end_ns = time.time_ns()
    spans = [span for row in rows for span in item_spans(run, row, end_ns)]
    body = {"resourceSpans": [{
        "resource": {"attributes": _attributes({"service.name": SERVICE})},
        "scopeSpans": [{"scope": {"name": SCOPE}, "spans": spans}],
    }]}  # fmt: skip
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    batch = SpanBatch.of(project_id, "application/json", data, datetime.now(UTC), len(spans))
    if len(batch.body) <= max_bytes or len(rows) == 1:  # one item is at most a few 32,000-character texts
        return [batch]
    half = len(rows) // 2
    return results_batches(project_id, run, rows[:half], max_bytes) + results_batches(
        project_id, run, rows[half:], max_bytes
    )
