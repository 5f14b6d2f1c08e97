"""``{{variable}}`` templating shared by the server, the SDK and the workers.

Deliberately not Jinja: prompts are data written by many people, and a template language with
loops and attribute access turns a prompt registry into a code execution surface.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agiflow_lab.errors import InvalidInput

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

Template = str | list[dict[str, str]]


def _texts(template: Template) -> list[str]:
    if isinstance(template, str):
        return [template]
    return [message["content"] for message in template]


def extract_variables(template: Template) -> list[str]:
    """Variables in order of first appearance."""
    seen: dict[str, None] = {}
    for text in _texts(template):
        for match in VARIABLE.finditer(text):
            seen.setdefault(match.group(1), None)
    return list(seen)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(template: Template, variables: dict[str, Any], *, strict: bool = True) -> Template:
    """Fill every ``{{name}}``; a missing or (when strict) unknown variable is an error naming it."""
    expected = extract_variables(template)
    missing = [name for name in expected if name not in variables]
    unknown = sorted(set(variables) - set(expected)) if strict else []
    if missing or unknown:
        problems = []
        if missing:
            problems.append("missing variable(s): " + ", ".join(missing))
        if unknown:
            problems.append("unknown variable(s): " + ", ".join(unknown))
        raise InvalidInput(
            "; ".join(problems),
            {"field": "variables", "missing": missing, "unknown": unknown, "expected": expected},
        )

    def fill(text: str) -> str:
        return VARIABLE.sub(lambda m: _as_text(variables[m.group(1)]), text)

    if isinstance(template, str):
        return fill(template)
    return [{**message, "content": fill(message["content"])} for message in template]
