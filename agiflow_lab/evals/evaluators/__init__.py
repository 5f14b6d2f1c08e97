"""The evaluator library: score one model output against one dataset item.

Pure Python (no database, no HTTP): the evaluation engine builds evaluators from a run's validated specs
(:func:`build_evaluator`) and calls :meth:`Evaluator.score`, which never raises.
"""

from agiflow_lab.evals.evaluators.base import Case, Evaluator, Score
from agiflow_lab.evals.evaluators.judge import DEFAULT_RUBRIC, JudgeBinding
from agiflow_lab.evals.evaluators.registry import build_evaluator, describe
from agiflow_lab.evals.evaluators.specs import EvaluatorSpec, EvaluatorSpecAdapter, check_unique_names

__all__ = [
    "DEFAULT_RUBRIC",
    "Case",
    "Evaluator",
    "EvaluatorSpec",
    "EvaluatorSpecAdapter",
    "JudgeBinding",
    "Score",
    "build_evaluator",
    "check_unique_names",
    "describe",
]
