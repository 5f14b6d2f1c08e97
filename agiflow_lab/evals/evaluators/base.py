"""The evaluator contract the run engine relies on: a case in, a score out, and never an exception.

An evaluation run scores thousands of outputs with several evaluators at once (``asyncio.gather``), so one
evaluator failing on one item must not lose the other scores or stop the run. :meth:`Evaluator.score` is
therefore the only public entry point, and it turns every failure into a :class:`Score` with ``error`` set.
Subclasses implement :meth:`Evaluator.evaluate` and simply raise when they cannot score.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

# A score computed as 7/10 must pass a 0.7 threshold even when float division lands a hair below it.
PASS_SLACK = 1e-9
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Case:
    output: str  # the model's reply
    expected: Any  # dataset item's expected (any JSON value, may be None)
    input: dict[str, Any]  # dataset item's input (prompt variables)
    metadata: dict[str, Any]
    rendered: str = ""  # the rendered prompt as text (judges may show it)


@dataclass(frozen=True)
class Score:
    evaluator: str  # the evaluator's name in this run
    score: float | None  # in [0, 1]; None when the evaluator errored
    passed: bool | None  # score >= threshold; None when errored
    explanation: str
    error: str | None = None  # set when the evaluator itself failed on this item


@dataclass(frozen=True)
class Verdict:
    """What an evaluator decided; ``passed`` overrides the threshold only when the evaluator knows better
    (a user function that returns ``{"score": 0.4, "passed": True}``)."""

    score: float
    explanation: str
    passed: bool | None = None


class EvaluatorError(Exception):
    """This item cannot be scored by this evaluator (no expected value, a judge call failed, ...).

    Distinct from a failing score: a model that writes invalid JSON scores 0, an item without an
    expected value cannot be scored at all, and the run's aggregates count the two differently.
    """


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """Explanations and errors are stored per item and shown in tables; a runaway message is cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expected_text(expected: Any) -> str:
    """The expected value as text: strings as they are, anything else as its JSON text.

    JSON rather than ``str()`` because datasets are JSON: the number 42 compares as ``42`` and the boolean
    true as ``true`` (not Python's ``True``), which is what a model asked for that value writes.
    """
    if expected is None:
        raise EvaluatorError("item has no expected value")
    if isinstance(expected, str):
        return expected
    return json.dumps(expected, ensure_ascii=False)


class Evaluator(ABC):
    name: str
    threshold: float

    def __init__(self, name: str, threshold: float) -> None:
        self.name = name
        self.threshold = threshold

    @abstractmethod
    async def evaluate(self, case: Case) -> Verdict:
        """Score one case; raise :class:`EvaluatorError` (or anything) when it cannot be scored."""

    async def score(self, case: Case) -> Score:
        """Never raises (``CancelledError`` is a ``BaseException`` and still propagates, so runs can stop)."""
        try:
            verdict = await self.evaluate(case)
            value = float(verdict.score)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise EvaluatorError(f"score {verdict.score!r} is outside [0, 1]")
        except EvaluatorError as exc:
            return self.failed(str(exc))
        except Exception as exc:  # the contract: an evaluator failing is this item's error
            return self.failed(f"{type(exc).__name__}: {exc}")
        passed = verdict.passed if verdict.passed is not None else value >= self.threshold - PASS_SLACK
        return Score(self.name, value, passed, clip(verdict.explanation))

    def failed(self, error: str) -> Score:
        return Score(self.name, None, None, "Not scored: the evaluator failed on this item.", clip(error))
