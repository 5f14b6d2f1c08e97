"""Fuzzy similarity: how close the output is to the expected text, for answers whose wording may drift."""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein as _Levenshtein

from agiflow_lab.evals.evaluators.base import Case, Evaluator, Verdict, expected_text
from agiflow_lab.evals.evaluators.specs import LevenshteinSpec


class Levenshtein(Evaluator):
    """Normalised similarity, 1 - distance / length of the longer text; both sides stripped first, since
    a trailing newline is not a difference anyone means to score."""

    def __init__(self, spec: LevenshteinSpec) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.case_sensitive = spec.case_sensitive

    async def evaluate(self, case: Case) -> Verdict:
        output, expected = case.output.strip(), expected_text(case.expected).strip()
        if not self.case_sensitive:
            output, expected = output.casefold(), expected.casefold()
        distance = _Levenshtein.distance(output, expected)
        similarity = _Levenshtein.normalized_similarity(output, expected)
        return Verdict(similarity, f"Similarity {similarity:.2f} to the expected text ({distance} edit(s) apart).")
