"""From a validated spec to a ready evaluator, and the catalogue of types the API lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from agiflow_lab.evals.evaluators.base import Evaluator
from agiflow_lab.evals.evaluators.judge import JudgeBinding, LLMJudge
from agiflow_lab.evals.evaluators.numeric import Numeric
from agiflow_lab.evals.evaluators.python_fn import PythonFunction
from agiflow_lab.evals.evaluators.similarity import Levenshtein
from agiflow_lab.evals.evaluators.specs import (
    AnySpec,
    ContainsSpec,
    ExactMatchSpec,
    JsonSchemaSpec,
    JsonValidSpec,
    LevenshteinSpec,
    LLMJudgeSpec,
    NumericSpec,
    PythonSpec,
    RegexSpec,
)
from agiflow_lab.evals.evaluators.structured import JsonSchema, JsonValid
from agiflow_lab.evals.evaluators.text import Contains, ExactMatch, Regex

# type -> (spec model, one-line description); the order is the order the API lists them in.
TYPES: dict[str, tuple[type[BaseModel], str]] = {
    "exact_match": (ExactMatchSpec, "The output equals the expected value (optionally ignoring case and whitespace)."),
    "contains": (ContainsSpec, "The output contains the given substrings (or the expected value)."),
    "regex": (RegexSpec, "The output matches a regular expression (or the expected value as one)."),
    "json_valid": (JsonValidSpec, "The output is valid JSON."),
    "json_schema": (JsonSchemaSpec, "The output is JSON that validates against a JSON Schema."),
    "numeric": (NumericSpec, "The number in the output equals the expected number within a tolerance."),
    "levenshtein": (LevenshteinSpec, "Edit-distance similarity of the output to the expected text."),
    "llm_judge": (LLMJudgeSpec, "A model grades the output with a rubric prompt from the prompt registry."),
    "python": (PythonSpec, "Your Python function scores the output."),
}

_BUILDERS: dict[type[BaseModel], Callable[[Any], Evaluator]] = {
    ExactMatchSpec: ExactMatch,
    ContainsSpec: Contains,
    RegexSpec: Regex,
    JsonValidSpec: JsonValid,
    JsonSchemaSpec: JsonSchema,
    NumericSpec: Numeric,
    LevenshteinSpec: Levenshtein,
    PythonSpec: PythonFunction,
}


def build_evaluator(spec: AnySpec, *, judge: JudgeBinding | None = None) -> Evaluator:
    """Raises ValueError only for a programming error (a judge spec without its binding); a spec that
    validated always builds."""
    if isinstance(spec, LLMJudgeSpec):
        if judge is None:
            raise ValueError(f"evaluator {spec.evaluator_name!r} is an llm_judge and needs a JudgeBinding")
        return LLMJudge(spec, judge)
    return _BUILDERS[type(spec)](spec)


def describe() -> list[dict[str, Any]]:
    return [
        {"type": kind, "description": description, "config_schema": model.model_json_schema()}
        for kind, (model, description) in TYPES.items()
    ]
