"""Untrusted JSON: what every request body and every imported row is checked for before anything uses it.

Each of these passes ``json.loads`` and then fails somewhere further in, far from the value that caused it:
a NUL character (Postgres refuses it in ``text`` and ``jsonb``), a lone surrogate (``\\ud800``: not
encodable as UTF-8), NaN and Infinity literals and numbers such as ``1e400`` that parse to infinity
(``jsonb`` and JavaScript clients cannot hold them), integers beyond 64 bits (Postgres ``bigint``), and a
deeply nested document (every recursive step after parsing — pydantic, ``json.dumps``, psycopg — has a
recursion limit). Checking once here, iteratively, names the offending value's path (``parameters.a.b``)
in a 4xx instead of leaving a 500 to whichever layer trips first.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Problem:
    path: str  # dotted, list indices as numbers: "items.0.input.x"; "" is the document itself
    message: str
    kind: str  # a stable name: nul_character, lone_surrogate, non_finite, int_too_large, too_deep


class UnsafeJson(ValueError):
    """Valid JSON holding a value nothing downstream can take; ``problem`` says where and what."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.path or 'the document'}: {problem.message}")
        self.problem = problem


class _Constant(str):
    """``NaN``/``Infinity`` as parsed, kept as a marker so ``check`` can name where it stood."""


def loads(data: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted input: raises ``ValueError`` when it is not JSON and ``UnsafeJson``
    when it is but holds a value listed above."""
    try:
        value = json.loads(data, parse_constant=_Constant)
    except RecursionError:  # deeper than the interpreter's limit, far beyond max_depth
        raise UnsafeJson(Problem("", f"nested deeper than {max_depth} levels", "too_deep")) from None
    check(value, max_depth=max_depth)
    return value


def check(value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH, root: tuple[str | int, ...] = ()) -> None:
    """Raise ``UnsafeJson`` for the first unsafe value in an already parsed document (a CSV record, say)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, root)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict | list):
            if len(path) - len(root) >= max_depth:
                raise UnsafeJson(Problem(_show(path), f"nested deeper than {max_depth} levels", "too_deep"))
            if isinstance(item, list):  # pushed last-first, so the first problem in document order is found
                stack.extend((item[i], (*path, i)) for i in range(len(item) - 1, -1, -1))
                continue
            for key in item:
                _check_text(key, (*path, key))
            stack.extend((item[key], (*path, key)) for key in reversed(item))
        elif isinstance(item, _Constant):
            raise UnsafeJson(Problem(_show(path), f"{item} is not a number JSON allows", "non_finite"))
        elif isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, float) and not math.isfinite(item):
            raise UnsafeJson(Problem(_show(path), "the number is out of range", "non_finite"))
        elif isinstance(item, int) and not isinstance(item, bool) and not INT64_MIN <= item <= INT64_MAX:
            raise UnsafeJson(Problem(_show(path), "the integer does not fit in 64 bits", "int_too_large"))


def check_text(text: str, field: str) -> None:
    """The string checks alone, for values that are not JSON (a query parameter, a path segment)."""
    _check_text(text, (field,))


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    if "\x00" in text:
        raise UnsafeJson(Problem(_show(path), "contains a NUL character (\\u0000)", "nul_character"))
    if not text.isascii() and _SURROGATE.search(text):
        raise UnsafeJson(Problem(_show(path), "contains a lone surrogate (\\ud800-\\udfff)", "lone_surrogate"))


def _show(path: tuple[str | int, ...]) -> str:
    """A printable path: a key that is itself the problem is shown escaped."""
    return ".".join(
        part.encode("unicode_escape").decode("ascii") if isinstance(part, str) and not part.isprintable() else str(part)
        for part in path
    )
