"""Prompts as files: one ``*.yaml``/``*.yml``/``*.json`` file per prompt, so teams can keep them in git.

A file holds the fields of ``PromptCreate``::

    name: greet              # default: the file's stem
    type: text               # default: chat if the template is a list of messages, else text
    description: Greets a customer
    tags: [support]
    labels: [production]     # labels that should point at this content
    commit_message: Shorter  # used when a push creates a version (default: "agiflow-lab push <file>")
    config: {model: gpt-4o, temperature: 0.2}
    template: |
      Hello {{name}}!

``dump`` writes keys in one fixed order and leaves out empty fields, so pull → push changes nothing
and a re-pull gives a byte-identical file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from agiflow_lab.prompts.models import ModelConfig, PromptCreate

Format = Literal["yaml", "json"]
SUFFIXES: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
KEY_ORDER = ("name", "type", "description", "tags", "labels", "commit_message", "config", "template")
AUTOMATIC_LABEL = "latest"


@dataclass(frozen=True)
class PromptFile:
    path: Path
    spec: PromptCreate

    @property
    def name(self) -> str:
        return self.spec.name

    def template(self) -> str | list[dict[str, str]]:
        return canonical_template(self.spec.template)

    def config(self) -> dict[str, Any]:
        return canonical_config(self.spec.config.model_dump())


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class BadFile(ValueError):
    pass


def canonical_template(template: Any) -> str | list[dict[str, str]]:
    """The template as the server stores it: a string, or ``[{"role", "content"}, ...]``."""
    if isinstance(template, str):
        return template
    return [{"role": _get(m, "role"), "content": _get(m, "content")} for m in template]


def _get(message: Any, key: str) -> str:
    return str(message[key] if isinstance(message, dict) else getattr(message, key))


def canonical_config(config: dict[str, Any]) -> dict[str, Any]:
    """Model parameters as the server stores them (validated, unset values dropped)."""
    return ModelConfig.model_validate(config).model_dump(exclude_none=True)


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if SUFFIXES[path.suffix.lower()] == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadFile(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise BadFile(f"not valid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise BadFile(f"not valid YAML: {exc}") from None


def _union_member(part: object) -> bool:
    # pydantic names the member of ``str | list[ChatMessage]`` it tried; readers want the field path.
    return isinstance(part, str) and (part == "str" or "[" in part)


def _describe(exc: ValidationError) -> str:
    """One reason per field, in the file's own terms."""
    found: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"] if not _union_member(part))
        found.setdefault(where, []).append(error["msg"].removeprefix("Value error, "))
    reasons = []
    for where, messages in found.items():
        if any(other.startswith(where + ".") for other in found if where):
            continue  # a deeper error explains it (e.g. template.0.role, not "template: not a string")
        if where == "template" and len(messages) > 1:
            messages = ["expected a string (text prompt) or a list of {role, content} messages (chat prompt)"]
        text = "; ".join(dict.fromkeys(messages))
        reasons.append(f"{where}: {text}" if where else text)
    return "; ".join(reasons)


def load_file(path: Path) -> PromptFile:
    """Read and validate one file; ``BadFile`` says what is wrong with it."""
    try:
        data = _parse(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise BadFile(f"cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise BadFile("expected a mapping of fields (name, template, ...) at the top level")
    data = {"name": path.stem, **data}
    if "type" not in data:
        data["type"] = "chat" if isinstance(data.get("template"), list) else "text"
    try:
        spec = PromptCreate.model_validate(data)
    except ValidationError as exc:
        raise BadFile(_describe(exc)) from None
    if AUTOMATIC_LABEL in spec.labels:
        raise BadFile("labels: 'latest' is automatic (it always follows the newest version); remove it")
    return PromptFile(path, spec)


def prompt_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def load_folder(folder: Path) -> tuple[list[PromptFile], list[Problem]]:
    """Every prompt file in ``folder`` (not recursive), and every problem found — all of them, not the first."""
    files: list[PromptFile] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path in prompt_paths(folder):
        try:
            loaded = load_file(path)
        except BadFile as exc:
            problems.append(Problem(path, str(exc)))
            continue
        if loaded.name in seen:
            problems.append(Problem(path, f"prompt {loaded.name!r} is already defined in {seen[loaded.name]}"))
            continue
        seen[loaded.name] = path
        files.append(loaded)
    return files, problems


def file_document(
    *,
    name: str,
    type: str,
    template: Any,
    config: dict[str, Any],
    labels: list[str],
    description: str = "",
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """The file's fields in ``KEY_ORDER``, empty ones left out."""
    values: dict[str, Any] = {
        "name": name,
        "type": type,
        "description": description,
        "tags": list(tags or []),
        "labels": sorted(label for label in labels if label != AUTOMATIC_LABEL),
        "config": canonical_config(config),
        "template": canonical_template(template),
    }
    return {key: values[key] for key in KEY_ORDER if key in values and values[key] not in ("", [], {})}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dumps(document: dict[str, Any], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000)
