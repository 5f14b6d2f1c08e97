"""JSON evaluators: does the output parse, and does it match a schema.

Output that is not JSON scores 0 (the model failed the task); it is not an evaluator error. One surrounding
Markdown fence (```json ... ```) is accepted by default because chat models add one even when told not to,
and the question these evaluators answer is "did the model produce this JSON", not "is the reply raw JSON";
set ``allow_fence`` to false when the reply is fed to a parser as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agiflow_lab.evals.evaluators.base import Case, Evaluator, Verdict
from agiflow_lab.evals.evaluators.specs import JsonSchemaSpec, JsonValidSpec

FENCE = re.compile(r"\A\s*```[A-Za-z0-9_-]*[ \t]*\n(?P<body>.*?)\n?```\s*\Z", re.DOTALL)


class NotJson(ValueError):
    pass


def unfence(text: str) -> str:
    match = FENCE.match(text)
    return match.group("body") if match else text


def parse_json(text: str, *, allow_fence: bool) -> Any:
    try:
        return json.loads(unfence(text) if allow_fence else text)
    except json.JSONDecodeError as exc:
        raise NotJson(f"The output is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from exc


class JsonValid(Evaluator):
    def __init__(self, spec: JsonValidSpec) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.allow_fence = spec.allow_fence

    async def evaluate(self, case: Case) -> Verdict:
        try:
            parse_json(case.output, allow_fence=self.allow_fence)
        except NotJson as exc:
            return Verdict(0.0, str(exc))
        return Verdict(1.0, "The output is valid JSON.")


class JsonSchema(Evaluator):
    """Formats (``"format": "email"``) are checked too; remote ``$ref`` are never fetched (an item that needs one gets an error score)."""

    def __init__(self, spec: JsonSchemaSpec) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.allow_fence = spec.allow_fence
        from jsonschema.validators import validator_for  # slow to import: only runs that check schemas pay

        cls = validator_for(spec.json_schema)
        self.validator = cls(spec.json_schema, format_checker=cls.FORMAT_CHECKER)

    async def evaluate(self, case: Case) -> Verdict:
        try:
            document = parse_json(case.output, allow_fence=self.allow_fence)
        except NotJson as exc:
            return Verdict(0.0, str(exc))
        errors = list(self.validator.iter_errors(document))
        if not errors:
            return Verdict(1.0, "The output is valid JSON and matches the schema.")
        from jsonschema.exceptions import best_match

        first = best_match(errors)
        assert first is not None
        count = f"{len(errors)} schema errors; the first" if len(errors) > 1 else "1 schema error"
        return Verdict(0.0, f"The output does not match the schema ({count}): at {first.json_path}, {first.message}.")
