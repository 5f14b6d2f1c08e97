"""The numeric evaluator: find the number in the output and compare it with the expected one.

Models wrap numbers in prose ("The answer is 1,234."), so the whole stripped output is tried first and
then the first number in it. Commas are read as thousands separators only in groups of three
("1,234,567.5"); otherwise a comma ends the number ("1,5" reads as 1), because guessing a decimal comma
would silently turn lists into decimals.
"""

from __future__ import annotations

import math
import re
from typing import Any

from agiflow_lab.evals.evaluators.base import Case, Evaluator, EvaluatorError, Verdict
from agiflow_lab.evals.evaluators.specs import NumericSpec

NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")
_DIGIT = re.compile(r"\d")


def _whole(text: str) -> float | None:
    """The text as one number, or None; non-finite spellings ("nan", "inf") are not numbers here."""
    candidate = text.strip()
    match = NUMBER.fullmatch(candidate)
    if not candidate or match is None or not _DIGIT.search(candidate):
        return None
    value = float(candidate.replace(",", ""))
    return value if math.isfinite(value) else None


def extract_number(text: str) -> float | None:
    whole = _whole(text)
    if whole is not None:
        return whole
    for match in NUMBER.finditer(text):
        if _DIGIT.search(match.group(0)) and (value := _whole(match.group(0))) is not None:
            return value
    return None


def expected_number(expected: Any) -> float:
    if expected is None:
        raise EvaluatorError("item has no expected value")
    if isinstance(expected, bool) or not isinstance(expected, int | float | str):
        raise EvaluatorError(f"the expected value {expected!r} is not a number")
    value = _whole(expected) if isinstance(expected, str) else float(expected)
    if value is None or not math.isfinite(value):
        raise EvaluatorError(f"the expected value {expected!r} is not a number")
    return value


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else repr(value)


class Numeric(Evaluator):
    def __init__(self, spec: NumericSpec) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.tolerance = spec.tolerance
        self.relative = spec.relative

    def _allowed(self, expected: float) -> float:
        relative = self.relative * abs(expected) if self.relative is not None else 0.0
        return max(self.tolerance, relative)

    async def evaluate(self, case: Case) -> Verdict:
        expected = expected_number(case.expected)
        got = extract_number(case.output)
        if got is None:
            return Verdict(0.0, f"The output contains no number (expected {_fmt(expected)}).")
        difference = abs(got - expected)
        allowed = self._allowed(expected)
        within = difference <= allowed
        verdict = "within" if within else "outside"
        return Verdict(
            1.0 if within else 0.0,
            f"The output's {_fmt(got)} vs expected {_fmt(expected)}: difference {_fmt(difference)}, "
            f"{verdict} the tolerance of {_fmt(allowed)}.",
        )
