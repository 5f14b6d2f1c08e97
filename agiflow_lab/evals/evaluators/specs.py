"""Evaluator configurations as submitted with a run: one pydantic model per type.

Everything that can be checked without an item is checked here, at submit time (a regex that does not
compile, a JSON Schema that is not one, Python code that does not compile or lacks its function), so a
bad run is a 422 naming the field instead of a job that fails on every item an hour later. The Python
code is only compiled and inspected here, never executed: that happens in the evaluation job's kernel.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator

from agiflow_lab.prompts.models import LabelName, PromptName

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
RegexFlag = Literal["i", "m", "s"]
Needle = Annotated[str, Field(min_length=1)]


def _threshold(default: float) -> Any:
    return Field(default, ge=0, le=1, description="An item passes this evaluator when score >= threshold")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    name: str | None = Field(None, min_length=1, max_length=100, description="Unique within the run; default: the type")
    threshold: float = _threshold(1.0)

    @property
    def evaluator_name(self) -> str:
        return self.name or self.type


class ExactMatchSpec(_Spec):
    """output == expected (a non-string expected is compared as its JSON text)."""

    type: Literal["exact_match"]
    case_sensitive: bool = True
    strip: bool = Field(True, description="Ignore leading and trailing whitespace on both sides")


class ContainsSpec(_Spec):
    """The output contains the required substrings."""

    type: Literal["contains"]
    value: Needle | list[Needle] | None = Field(
        None, description="Substring(s) to look for; default: the item's expected (a string or list of strings)"
    )
    case_sensitive: bool = False
    mode: Literal["all", "any"] = Field(
        "all", description="all: score = fraction found; any: 1 if at least one is found"
    )

    @field_validator("value")
    @classmethod
    def _not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one substring, or leave value out to use the expected value")
        return value


class RegexSpec(_Spec):
    """re.search(pattern, output) finds a match."""

    type: Literal["regex"]
    pattern: str | None = Field(None, description="Default: the item's expected value is the pattern")
    flags: list[RegexFlag] = Field(default_factory=list, description="i: ignore case, m: multiline, s: dot-all")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return pattern


class JsonValidSpec(_Spec):
    """The output parses as JSON."""

    type: Literal["json_valid"]
    allow_fence: bool = Field(True, description="Accept JSON wrapped in one ```json ... ``` Markdown fence")


class JsonSchemaSpec(_Spec):
    """The output parses as JSON and validates against a JSON Schema."""

    # "schema" is the natural name but shadows BaseModel.schema(); the alias keeps it on the wire.
    model_config = ConfigDict(extra="forbid", validate_by_alias=True, validate_by_name=False, serialize_by_alias=True)
    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema", description="A JSON Schema (its $schema picks the draft)")
    allow_fence: bool = Field(True, description="Accept JSON wrapped in one ```json ... ``` Markdown fence")

    @field_validator("json_schema")
    @classmethod
    def _is_a_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        # Imported here: jsonschema's format checkers cost seconds to import (an IRI grammar is compiled),
        # and every evaluation kernel imports this module.
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for

        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.path)
            raise ValueError(f"not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}") from exc
        return schema


class NumericSpec(_Spec):
    """The number in the output equals float(expected) within a tolerance."""

    type: Literal["numeric"]
    tolerance: float = Field(0, ge=0, description="Absolute tolerance")
    relative: float | None = Field(
        None, ge=0, description="Relative tolerance, a fraction of |expected|; either tolerance passing is enough"
    )


class LevenshteinSpec(_Spec):
    """Normalised Levenshtein similarity of output and expected."""

    type: Literal["levenshtein"]
    threshold: float = _threshold(0.8)
    case_sensitive: bool = False


class LLMJudgeSpec(_Spec):
    """A model grades the output with a rubric prompt from the prompt registry."""

    type: Literal["llm_judge"]
    threshold: float = _threshold(0.5)
    connection: str = Field(min_length=1, max_length=128, description="The model connection the judge calls")
    model: str | None = Field(None, max_length=200, description="Default: the rubric's model, then the connection's")
    prompt: PromptName = Field(description="Name of the rubric prompt in this project's prompt registry")
    label: LabelName | None = Field(None, description="Default: production; pinned to a version at submit")
    version: int | None = Field(None, gt=0)
    params: dict[str, Any] = Field(default_factory=dict, description="Over the rubric version's model parameters")
    scale: float = Field(1.0, gt=0, description="The judge's score is divided by this (10 for a 0-10 rubric)")

    @field_validator("version")
    @classmethod
    def _label_or_version(cls, version: int | None, info: ValidationInfo) -> int | None:
        if version is not None and info.data.get("label") is not None:
            raise ValueError("give label or version, not both")
        return version


class PythonSpec(_Spec):
    """A Python function scores the output (it runs in the evaluation job's kernel)."""

    type: Literal["python"]
    threshold: float = _threshold(0.5)
    code: str = Field(
        min_length=1, max_length=100_000, description="Defines def evaluate(output, expected, input, metadata)"
    )
    function: str = Field(
        "evaluate", pattern=IDENTIFIER, validate_default=True, description="The function in code to call"
    )
    timeout_seconds: float = Field(10, gt=0, le=600, description="Per item")

    @field_validator("code")
    @classmethod
    def _compiles(cls, code: str) -> str:
        try:
            compile(code, "<evaluator>", "exec")
        except (SyntaxError, ValueError) as exc:
            line = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
            message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
            raise ValueError(f"code does not compile: {message}{line}") from exc
        return code

    @field_validator("function")
    @classmethod
    def _defined(cls, function: str, info: ValidationInfo) -> str:
        code = info.data.get("code")
        if code is not None and function not in _top_level_names(ast.parse(code)):
            raise ValueError(f"code does not define {function!r} at the top level")
        return function


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names the module binds when executed (defs, classes, assignments, imports), including under if/try."""
    names: set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
    return names


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.Try | ast.With | ast.AsyncWith | ast.For | ast.AsyncFor | ast.While):
            for block in ("body", "orelse", "finalbody"):
                yield from _statements(getattr(node, block, []))
            for handler in getattr(node, "handlers", []):
                yield from _statements(handler.body)


AnySpec = (
    ExactMatchSpec | ContainsSpec | RegexSpec | JsonValidSpec | JsonSchemaSpec | NumericSpec | LevenshteinSpec
    | LLMJudgeSpec | PythonSpec
)  # fmt: skip
EvaluatorSpec = Annotated[AnySpec, Field(discriminator="type")]
EvaluatorSpecAdapter: TypeAdapter[AnySpec] = TypeAdapter(EvaluatorSpec)


def check_unique_names(specs: Iterable[AnySpec]) -> None:
    """Scores are stored by evaluator name, so two evaluators with one name would overwrite each other."""
    seen: set[str] = set()
    for spec in specs:
        if spec.evaluator_name in seen:
            raise ValueError(
                f"two evaluators are named {spec.evaluator_name!r}; give each a unique name"
                + ("" if spec.name else " (the name defaults to the type)")
            )
        seen.add(spec.evaluator_name)
