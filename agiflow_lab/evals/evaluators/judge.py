"""LLM-as-judge: a model grades each output with a rubric prompt from the prompt registry.

The run engine resolves everything outside this module (the pinned rubric version, the judge's connection
with its retries, the model and parameters) into a :class:`JudgeBinding`, so the evaluator itself only
renders, calls and parses, and tests can bind it to any real OpenAI-compatible server.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from agiflow_lab.errors import InvalidInput
from agiflow_lab.evals.evaluators.base import Case, Evaluator, EvaluatorError, Verdict, clip
from agiflow_lab.evals.evaluators.specs import LLMJudgeSpec
from agiflow_lab.evals.evaluators.structured import unfence
from agiflow_lab.prompts.template import Template, render
from agiflow_lab.providers.base import Completion, CompletionRequest, ProviderError

# Seeded as a text prompt; its 0-1 scale matches the spec's default ``scale`` of 1.
DEFAULT_RUBRIC = """\
You are grading an AI assistant's answer.

The assistant was given this input:
{{input}}

The reference answer is:
{{expected}}

The assistant answered:
{{output}}

Grade how well the answer agrees with the reference answer in meaning: correct facts, nothing important \
missing, nothing contradicting it. Ignore differences of wording, length and formatting that do not change \
the meaning. If the reference is empty or null, grade whether the answer correctly and fully addresses the input.

Score from 0 to 1: 1 fully correct, 0.5 partly correct or incomplete, 0 wrong or off-topic.

Reply with only a JSON object, no other text: {"score": <number from 0 to 1>, "reasoning": "<one or two sentences>"}
"""

# OpenAI's JSON mode rejects requests whose messages never mention JSON, and the parser needs this shape.
FORMAT_HINT = '\n\nReply with only a JSON object: {"score": <number>, "reasoning": "<one or two sentences>"}'
MAX_CANDIDATES = 50  # JSON objects tried in a chatty reply before giving up


@dataclass(frozen=True)
class JudgeBinding:
    complete: Callable[[CompletionRequest], Awaitable[Completion]]
    model: str
    params: dict[str, Any]
    prompt_type: Literal["text", "chat"]
    template: Template


def judge_variables(case: Case) -> dict[str, Any]:
    """The item's input keys, then the fixed names (which win over an input key of the same name)."""
    expected = case.expected if isinstance(case.expected, str) else json.dumps(case.expected, ensure_ascii=False)
    return {
        **case.input,
        "input": json.dumps(case.input, ensure_ascii=False),
        "output": case.output,
        "expected": expected,
        "metadata": json.dumps(case.metadata, ensure_ascii=False),
        "rendered": case.rendered,
    }


def _objects(text: str) -> Iterator[Any]:
    """The reply as JSON, then inside one Markdown fence, then each JSON object embedded in prose."""
    for candidate in (text, unfence(text.strip())):
        try:
            yield json.loads(candidate)
        except json.JSONDecodeError:
            pass
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(MAX_CANDIDATES):
        if start < 0:
            return
        try:
            found, _end = decoder.raw_decode(text, start)
            yield found
        except json.JSONDecodeError:
            pass
        start = text.find("{", start + 1)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_judgement(text: str) -> tuple[float, str]:
    """(raw score, reasoning) from the first JSON object in the reply that has a numeric ``score``."""
    for found in _objects(text):
        if isinstance(found, dict) and (score := _number(found.get("score"))) is not None and math.isfinite(score):
            reasoning = found.get("reasoning", found.get("explanation", ""))
            return score, reasoning.strip() if isinstance(reasoning, str) else json.dumps(reasoning)
    raise EvaluatorError(f'the judge\'s reply has no JSON object with a numeric "score": {clip(text.strip(), 300)!r}')


def _with_format_hint(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    if any("json" in m["content"].lower() for m in messages):
        return messages
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    if not users:
        return [*messages, {"role": "user", "content": FORMAT_HINT.strip()}]
    last = users[-1]
    return [{**m, "content": m["content"] + FORMAT_HINT} if i == last else m for i, m in enumerate(messages)]


class LLMJudge(Evaluator):
    def __init__(self, spec: LLMJudgeSpec, binding: JudgeBinding) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.scale = spec.scale
        self.binding = binding

    def _messages(self, case: Case) -> list[dict[str, str]]:
        variables = judge_variables(case)
        try:
            rendered = render(self.binding.template, variables, strict=False)
        except InvalidInput as exc:
            unknown = ", ".join(exc.details.get("missing", [])) or str(exc)
            known = ", ".join(sorted(name for name in variables if name.isidentifier()))
            raise EvaluatorError(f"the rubric uses unknown variable(s): {unknown} (available: {known})") from exc
        if isinstance(rendered, str):
            return _with_format_hint([{"role": "user", "content": rendered}])
        return _with_format_hint([{"role": m["role"], "content": m["content"]} for m in rendered])

    async def evaluate(self, case: Case) -> Verdict:
        request = CompletionRequest(
            messages=self._messages(case), model=self.binding.model, params=dict(self.binding.params), json_output=True
        )
        try:
            completion = await self.binding.complete(request)
        except ProviderError as exc:
            status = f" (HTTP {exc.status})" if exc.status else ""
            raise EvaluatorError(f"the judge call failed{status}: {exc}") from exc
        raw, reasoning = parse_judgement(completion.text)
        score = raw / self.scale
        if not 0.0 <= score <= 1.0:
            raise EvaluatorError(f"the judge's score {raw:g} on a scale of {self.scale:g} is {score:g}, outside [0, 1]")
        return Verdict(score, reasoning or "The judge gave no reasoning.")
