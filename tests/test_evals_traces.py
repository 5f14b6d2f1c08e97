"""An evaluation run's items as traces (agiflow_lab/evals/traces.py), decoded the way a span writer does."""

from __future__ import annotations

import random
from typing import Any

from agiflow_lab.evals.traces import item_scores, item_trace_id, results_batches
from agiflow_lab.traces.otlp import decode_body

RUN = {"id": "3f1c2f4e-0000-4000-8000-000000000001", "name": "nightly", "model": "gpt-4o-mini",
       "connection_kind": "openai", "prompt_name": "qa", "prompt_version": 3}  # fmt: skip


def row(i: int, **extra: Any) -> dict[str, Any]:
    return {"item_id": f"q{i}", "input": {"question": f"question {i}"}, "expected": "yes",
            "rendered": [{"role": "user", "content": f"Q: question {i}"}], "output": "yes", "error": None,
            "latency_ms": 120.5, "tokens_in": 4, "tokens_out": 1, "attempts": 1, "score": 0.5, "passed": False,
            "scores": {"exact_match": {"score": 1.0, "passed": True, "explanation": "same", "error": None},
                       "judge": {"score": None, "passed": False, "explanation": "no", "error": None}},
            **extra}  # fmt: skip


def decode(batch: Any) -> list[Any]:
    limit = 64 * 1024 * 1024
    return decode_body(batch.request_body(limit), batch.content_type, None, max_bytes=limit).spans


def test_an_item_is_a_root_a_model_call_and_one_span_per_evaluator() -> None:
    (batch,) = results_batches(7, RUN, [row(0)])
    spans = {s.name: s for s in decode(batch)}
    assert set(spans) == {"eval item q0", "chat gpt-4o-mini", "evaluator exact_match", "evaluator judge"}
    root, call = spans["eval item q0"], spans["chat gpt-4o-mini"]
    assert root.trace_id == item_trace_id(RUN["id"], "q0") and root.parent_span_id is None
    assert {s.parent_span_id for n, s in spans.items() if n != root.name} == {root.span_id}
    assert (root.session_id, root.prompt_name, root.prompt_version) == (RUN["id"], "qa", 3)
    assert (call.span_type, call.model, call.tokens_in, call.tokens_out) == ("chat", "gpt-4o-mini", 4, 1)
    assert round((call.end_ns - call.start_ns) / 1e6, 1) == 120.5
    assert spans["evaluator judge"].span_type == "evaluator"
    assert (batch.project_id, batch.spans) == (7, 4)
    again = decode(results_batches(7, RUN, [row(0)])[0])  # the same ids every time: a redelivery is the same spans
    assert {s.span_id for s in again} == {s.span_id for s in spans.values()}


def test_a_failed_call_has_no_evaluators_and_a_failed_render_no_call() -> None:
    failed = row(1, output=None, error="model call failed: 429", scores={}, tokens_in=None, tokens_out=None)
    unrendered = row(2, rendered=None, output=None, error="rendering failed: missing question", scores={})
    spans = decode(results_batches(1, RUN, [failed, unrendered])[0])
    by_trace: dict[str, list[Any]] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    assert sorted(s.name for s in by_trace[item_trace_id(RUN["id"], "q1")]) == ["chat gpt-4o-mini", "eval item q1"]
    assert all(s.status == "error" for s in by_trace[item_trace_id(RUN["id"], "q1")])
    assert [s.name for s in by_trace[item_trace_id(RUN["id"], "q2")]] == ["eval item q2"]


def test_big_batches_are_split_to_fit_a_bus_message() -> None:
    noise = random.Random(1)
    rows = [row(i, output="".join(noise.choice("abcdefgh ") for _ in range(30_000))) for i in range(40)]
    batches = results_batches(1, RUN, rows, max_bytes=200_000)
    assert len(batches) > 1 and all(len(b.body) <= 200_000 for b in batches)
    assert sum(b.spans for b in batches) == 40 * 4
    assert len({s.trace_id for b in batches for s in decode(b)}) == 40


def test_evaluator_scores_are_numbers_or_verdicts() -> None:
    scores = {s.name: s for s in item_scores(RUN, row(0))}
    assert (scores["exact_match"].value, scores["judge"].value) == (1.0, False)
    assert {s.source for s in scores.values()} == {"eval"}
    assert {s.trace_id for s in scores.values()} == {item_trace_id(RUN["id"], "q0")}
