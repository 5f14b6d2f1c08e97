"""User-written Python evaluators: ``def evaluate(output, expected, input, metadata)`` (or ``async def``).

This runs inside the evaluation job's kernel, which already executes user code (every run is a notebook
job), so it adds no new trust boundary; the server only compiles the code at submit (``specs.py``) and
never runs it. What this module guards against is one user function stalling or crashing the whole run:
every failure becomes this item's error score, and every call has a timeout.

Sync functions run in a worker thread (``asyncio.to_thread``) because user code may block (file reads,
HTTP calls, heavy maths) and the engine scores many items concurrently on one event loop. A thread that
timed out cannot be killed: it keeps running in the background. So that such threads cannot starve the
loop's shared executor (which the model clients also use, e.g. for DNS look-ups), after
``MAX_OVERDUE`` of them are still running the evaluator stops calling the function and fails items at once.
An ``async def`` function runs on the loop and is cancelled cleanly at its timeout, as long as it awaits.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import numbers
import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agiflow_lab.evals.evaluators.base import Case, Evaluator, EvaluatorError, Verdict
from agiflow_lab.evals.evaluators.specs import PythonSpec

MAX_OVERDUE = 2  # timed-out threads still running before the function is no longer called
MAX_PARALLEL = 4  # concurrent sync calls, so the timeout measures the call and not a queue for threads
_RESULT_KEYS = {"score", "passed", "explanation"}
_SHAPE = "return a bool, a number in [0, 1] or a dict {score, passed?, explanation?}"


@dataclass
class _Call:
    done: bool = False
    overdue: bool = False


class PythonFunction(Evaluator):
    def __init__(self, spec: PythonSpec) -> None:
        super().__init__(spec.evaluator_name, spec.threshold)
        self.spec = spec
        self.filename = f"<evaluator {spec.evaluator_name}>"
        self.lines = spec.code.splitlines()
        self._function: Callable[..., Any] | None = None
        self._load_error: str | None = None
        self._load_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(MAX_PARALLEL)
        self._overdue_lock = threading.Lock()
        self._overdue = 0

    async def evaluate(self, case: Case) -> Verdict:
        function = await self._load()
        # Copies: evaluators score one case concurrently, and a function that edits its input must not leak.
        args = (case.output, copy.deepcopy(case.expected), copy.deepcopy(case.input), copy.deepcopy(case.metadata))
        try:
            result = await self._timed(lambda: function(*args), in_thread=not inspect.iscoroutinefunction(function))
        except EvaluatorError:
            raise
        except Exception as exc:
            raise EvaluatorError(self._describe(exc)) from exc
        return _verdict(result)

    async def _load(self) -> Callable[..., Any]:
        """Executes the module once, on first use, in a thread: its top level may import or load slowly."""
        async with self._load_lock:
            if self._function is None and self._load_error is None:
                try:
                    self._function = await self._timed(self._exec, in_thread=True)
                except EvaluatorError as exc:
                    self._load_error = f"loading the code failed: {exc}"
                except Exception as exc:
                    self._load_error = f"loading the code failed: {self._describe(exc)}"
        if self._load_error is not None:
            raise EvaluatorError(self._load_error)
        assert self._function is not None
        return self._function

    def _exec(self) -> Callable[..., Any]:
        namespace: dict[str, Any] = {"__name__": "agiflow_evaluator"}
        exec(compile(self.spec.code, self.filename, "exec"), namespace)  # noqa: S102 - the feature: user code
        function = namespace.get(self.spec.function)
        if not callable(function):
            raise EvaluatorError(f"the code does not define a function named {self.spec.function!r}")
        return function  # type: ignore[no-any-return]

    async def _timed(self, call: Callable[[], Any], *, in_thread: bool) -> Any:
        timeout = self.spec.timeout_seconds
        if in_thread and self._overdue >= MAX_OVERDUE:
            raise EvaluatorError(
                f"not called: {self._overdue} earlier calls are still running after timing out ({timeout:g} s)"
            )
        tracker = _Call()
        async with self._slots:
            timer = asyncio.timeout(timeout)
            try:
                async with timer:
                    result = await asyncio.to_thread(self._tracked, call, tracker) if in_thread else await call()
                    if inspect.isawaitable(result):  # a sync wrapper that returned a coroutine
                        result = await result
                    return result
            except TimeoutError:
                if not timer.expired():
                    raise  # the function's own TimeoutError
                if in_thread:
                    with self._overdue_lock:
                        if not tracker.done:
                            tracker.overdue = True
                            self._overdue += 1
                raise EvaluatorError(f"timed out after {timeout:g} s") from None

    def _tracked(self, call: Callable[[], Any], tracker: _Call) -> Any:
        try:
            return call()
        finally:
            with self._overdue_lock:
                tracker.done = True
                if tracker.overdue:
                    self._overdue -= 1

    def _describe(self, exc: BaseException) -> str:
        """``Type: message (line N in function: source)`` — the last traceback line is where to look."""
        frames = traceback.extract_tb(exc.__traceback__)
        where = ""
        if frames:
            last = frames[-1]
            if last.filename == self.filename and last.lineno and 0 < last.lineno <= len(self.lines):
                where = f" (line {last.lineno} in {last.name}: {self.lines[last.lineno - 1].strip()})"
            else:
                where = f" ({os.path.basename(last.filename)}:{last.lineno} in {last.name})"
        return f"{type(exc).__name__}: {exc}{where}"


def _unit(value: Any, what: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if not isinstance(value, numbers.Real):
        raise EvaluatorError(f"{what} is {type(value).__name__}, not a number; {_SHAPE}")
    score = float(value)
    if not 0.0 <= score <= 1.0:  # also rejects NaN
        raise EvaluatorError(f"{what} {value!r} is outside [0, 1]")
    return score


def _plain(value: Any) -> Any:
    """NumPy scalars (``np.float64(0.5)``, ``np.True_``) as Python values; users return them often."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _verdict(result: Any) -> Verdict:
    result = _plain(result)
    if isinstance(result, bool):
        return Verdict(1.0 if result else 0.0, f"The function returned {result}.", passed=result)
    if isinstance(result, numbers.Real):
        return Verdict(_unit(result, "the returned score"), f"The function returned {float(result):g}.")
    if isinstance(result, dict):
        unknown = sorted(str(k) for k in set(result) - _RESULT_KEYS)
        if unknown:
            raise EvaluatorError(f"the returned dict has unknown key(s) {', '.join(unknown)}; {_SHAPE}")
        if "score" not in result:
            raise EvaluatorError(f"the returned dict has no 'score'; {_SHAPE}")
        raw = _plain(result["score"])
        score = _unit(raw, "the returned 'score'")
        passed = _plain(result.get("passed", raw if isinstance(raw, bool) else None))
        if passed is not None and not isinstance(passed, bool):
            raise EvaluatorError(f"the returned 'passed' is {type(passed).__name__}, not a bool")
        explanation = result.get("explanation", f"The function scored {score:g}.")
        if not isinstance(explanation, str):
            raise EvaluatorError(f"the returned 'explanation' is {type(explanation).__name__}, not a string")
        return Verdict(score, explanation, passed=passed)
    raise EvaluatorError(f"the function returned {type(result).__name__}; {_SHAPE}")
