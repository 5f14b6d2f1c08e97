"""String evaluators: exact match, substring containment and regular expressions.

A non-string expected value is compared as its JSON text (see :func:`base.expected_text`).
"""

from __future__ import annotations

import re
from typing import Any

from agiflow_lab.evals.evaluators.base import Case, Evaluator, EvaluatorError, Verdict, expected_text
from agiflow_lab.evals.evaluators.specs import ContainsSpec, ExactMatchSpec, RegexSpec

_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
_SHOWN = 80  # characters of a value quoted in an explanation


def shown(text: str) -> str:
    """A value quoted for a person: in curly quotes with its line breaks as they are (``repr`` would show
    them as a literal ``\\n``, which reads as part of the text)."""
    return "“" + (text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…") + "”"


class ExactMatch(Evaluator):
    def __init__(self, spec: ExactMatchSpec) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.spec = spec

    def _normal(self, text: str) -> str:
        text = text.strip() if self.spec.strip else text
        return text if self.spec.case_sensitive else text.casefold()

    async def evaluate(self, case: Case) -> Verdict:
        expected = expected_text(case.expected)
        if self._normal(case.output) == self._normal(expected):
            return Verdict(1.0, "The output matches the expected value exactly.")
        return Verdict(0.0, f"The output {shown(case.output)} differs from the expected {shown(expected)}.")


class Contains(Evaluator):
    def __init__(self, spec: ContainsSpec) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.spec = spec

    def _needles(self, expected: Any) -> list[str]:
        value = self.spec.value
        if value is None:
            value = [expected_text(v) for v in expected] if isinstance(expected, list) else expected_text(expected)
        needles = [value] if isinstance(value, str) else list(value)
        if not needles or not all(needles):
            raise EvaluatorError("nothing to look for: the expected value is empty")
        return needles

    async def evaluate(self, case: Case) -> Verdict:
        needles = self._needles(case.expected)
        fold = (lambda t: t) if self.spec.case_sensitive else str.casefold
        haystack = fold(case.output)
        missing = [n for n in needles if fold(n) not in haystack]
        found = len(needles) - len(missing)
        if self.spec.mode == "any":
            score = 1.0 if found else 0.0
            if found:
                return Verdict(score, f"The output contains {found} of {len(needles)} substrings; one is enough.")
            return Verdict(score, f"The output contains none of: {', '.join(shown(n) for n in needles)}.")
        if not missing:
            return Verdict(1.0, f"The output contains all {len(needles)} required substring(s).")
        return Verdict(
            found / len(needles),
            f"The output contains {found} of {len(needles)}; missing: {', '.join(shown(n) for n in missing)}.",
        )


class Regex(Evaluator):
    """``re.search`` runs inline: outputs are short, and a pathological pattern is the run author's own."""

    def __init__(self, spec: RegexSpec) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.flags = 0
        for flag in spec.flags:
            self.flags |= _FLAGS[flag]
        self.pattern = re.compile(spec.pattern, self.flags) if spec.pattern is not None else None

    def _pattern(self, expected: Any) -> re.Pattern[str]:
        if self.pattern is not None:
            return self.pattern
        if not isinstance(expected, str):
            raise EvaluatorError("no pattern: the evaluator has none and the item's expected value is not a string")
        try:
            return re.compile(expected, self.flags)
        except re.error as exc:
            raise EvaluatorError(f"the expected value is not a valid regular expression: {exc}") from exc

    async def evaluate(self, case: Case) -> Verdict:
        pattern = self._pattern(case.expected)
        match = pattern.search(case.output)
        if match:
            return Verdict(1.0, f"The output matches /{pattern.pattern}/ at {shown(match.group(0))}.")
        return Verdict(0.0, f"The output does not match /{pattern.pattern}/.")
