"""``EvalRunView``: an evaluation run live (progress, per-evaluator table), its items with the failures first,
and a comparison with another run."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Literal

import traitlets as t
from typing_extensions import TypedDict

from agiflow_lab.evals.models import Comparison, ItemResult, Run
from agiflow_lab.jobs.models import FINAL_STATES
from agiflow_lab.sdk.transport import segment
from agiflow_lab.widgets._base import STATIC, Widget, messages_of, record, rows
from agiflow_lab.widgets._events import JobEvents
from agiflow_lab.widgets._session import Session

if TYPE_CHECKING:
    from agiflow_lab.sdk.client import Client

POLL_SECONDS = 1.0  # between refreshes while the events socket is not connected
SAFETY_SECONDS = 5.0  # between refreshes while it is (each event of the run's job refreshes at once)
MIN_GAP_SECONDS = 0.25  # a burst of progress events makes one refresh, not one each
ITEMS_SHOWN = 50
OTHER_RUNS = 20


class RunView(TypedDict):
    id: str
    name: str
    state: str
    prompt: str  # "qa v3"
    dataset: str  # "qa v2"
    model: str  # "echo (built-in)" or "openai · gpt-4o"
    items_done: int
    items_total: int
    passed: int
    pass_rate: float | None
    mean_score: float | None
    errors: int
    evaluator_errors: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    tokens_in: int
    tokens_out: int
    cost: float | None
    unpriced_items: int
    error: str | None  # the job's failure, when it failed


class EvaluatorRow(TypedDict):
    name: str
    type: str
    threshold: float
    scored: int
    passed: int
    pass_rate: float | None
    mean_score: float | None
    errors: int


class ScoreCell(TypedDict):
    score: float | None
    passed: bool | None
    explanation: str  # or the evaluator's error


class ItemRow(TypedDict):
    item_id: str
    input: str  # JSON text
    expected: str  # JSON text ("" when none)
    output: str | None
    error: str | None
    passed: bool
    score: float | None
    latency_ms: float | None
    scores: dict[str, ScoreCell]
    trace_id: str | None


class RunChoice(TypedDict):
    id: str
    name: str
    state: str
    created_at: str


class ComparedItem(TypedDict):
    item_id: str
    change: str
    score_delta: float | None
    input: str
    outputs: list[str | None]  # one per run
    passed: list[bool | None]


class ComparisonView(TypedDict):
    runs: list[RunChoice]
    pass_rates: list[float | None]
    regressed: int
    improved: int
    unchanged: int
    missing: int
    score_up: int
    score_down: int
    items: list[ComparedItem]  # the items whose verdict changed (first page)


class Compare(TypedDict):
    type: Literal["compare"]
    run_id: str  # this run is the baseline, run_id is compared against it


class Refresh(TypedDict):
    type: Literal["refresh"]


class Cancel(TypedDict):
    type: Literal["cancel"]


RunMessage = Compare | Refresh | Cancel


class EvalRunView(Widget[RunMessage]):
    """``EvalRunView(client, run_id)``: follows the run while it runs, on threads of its own (the kernel stays
    free): each event of its job on the project's events WebSocket refreshes it, and it asks the API every
    second while the socket is not connected (every 5 s while it is). Then it shows the run's evaluators and
    items (failures first). ``poll=False``: someone else feeds it runs through ``show(run)``
    (``EvalRun.wait()`` does, from its own loop)."""

    _esm = STATIC / "eval_run.js"
    messages = messages_of(Compare, Refresh, Cancel)

    run = record(RunView)
    evaluators: t.List[EvaluatorRow] = rows(EvaluatorRow)
    items: t.List[ItemRow] = rows(ItemRow)
    others: t.List[RunChoice] = rows(RunChoice)
    comparison = record(ComparisonView)
    live = t.Bool(False).tag(sync=True)  # following the run now
    socket = t.Bool(False).tag(sync=True)  # through the events WebSocket (else by polling alone)

    def __init__(self, client: Client | Session, run_id: str, *, poll: bool = True, current: Run | None = None) -> None:
        super().__init__()
        self._session = Session.of(client)
        self.run_id = run_id
        self.show(current or self._session.evals._get(run_id))
        self._others()
        self._poller: threading.Thread | None = None
        self._wake = threading.Event()
        self._events: JobEvents | None = None
        if poll and not self.finished:
            self.live = True
            self._events = JobEvents(self._session.transport, self._session.project, self._job_id, self._wake)
            self._events.start()
            self._poller = threading.Thread(target=self._poll, name=f"agiflow-run-{run_id[:8]}", daemon=True)
            self._poller.start()

    @property
    def finished(self) -> bool:
        return self.run is not None and self.run["state"] in FINAL_STATES

    def show(self, run: Run) -> None:
        """Show ``run``'s progress; once it has finished, its items too."""
        was_finished = self.finished
        self._dataset = str(run.dataset.get("name") or "")
        self._job_id = run.job_id
        self.run = _run_view(run)
        self.evaluators = [EvaluatorRow(**e.model_dump()) for e in run.aggregates.evaluators]  # type: ignore[typeddict-item]
        if self.finished and not was_finished:
            self._items()

    def _poll(self) -> None:
        events = self._events
        try:
            while not self._closed.is_set():
                self.socket = events is not None and events.connected.is_set()
                self._wake.wait(SAFETY_SECONDS if self.socket else POLL_SECONDS)
                self._wake.clear()
                if self._closed.is_set():
                    return
                try:
                    self.show(self._session.evals._get(self.run_id))
                    self.error = ""
                except Exception as exc:  # a server restarting: say so and keep polling
                    self.error = f"could not refresh the run: {exc}"
                if self.finished:
                    return
                self._closed.wait(MIN_GAP_SECONDS)
        finally:
            self.live = self.socket = False
            if events is not None:
                events.stop.set()

    def dispatch(self, message: RunMessage) -> None:
        if message["type"] == "compare":
            self.compare(message["run_id"])
        elif message["type"] == "refresh":
            self.show(self._session.evals._get(self.run_id))
            self._items()
            self._others()
        elif message["type"] == "cancel":
            self.show(self._session.evals.get(self.run_id).cancel())

    def compare(self, other_run_id: str) -> ComparisonView:
        """This run is the baseline; ``other_run_id`` is classified against it."""
        params = {"runs": f"{self.run_id},{other_run_id}", "limit": ITEMS_SHOWN}
        found = Comparison.model_validate(self._session.request("GET", "evals/compare", params=params))
        view = ComparisonView(
            runs=[_choice(r) for r in found.runs], pass_rates=[r.aggregates.pass_rate for r in found.runs],
            regressed=found.regressed, improved=found.improved, unchanged=found.unchanged, missing=found.missing,
            score_up=found.score_up, score_down=found.score_down,
            items=[ComparedItem(item_id=i.item_id, change=i.change, score_delta=i.score_delta, input=_json(i.input),
                                outputs=[None if r is None else r.output for r in i.results],
                                passed=[None if r is None else r.passed for r in i.results])
                   for i in found.items],
        )  # fmt: skip
        self.comparison = view
        return view

    def _items(self) -> None:
        path = f"projects/{segment(self._session.project)}/evals/runs/{segment(self.run_id)}/results"
        t_ = self._session.transport
        failed = [ItemResult.model_validate(i) for i in t_.items(path, {"failed_only": "true"}, limit=ITEMS_SHOWN)]
        seen = {i.item_id for i in failed}
        rest: list[ItemResult] = []
        if len(failed) < ITEMS_SHOWN:
            for raw in t_.items(path, {"failed_only": "false"}, limit=ITEMS_SHOWN):
                item = ItemResult.model_validate(raw)
                if item.item_id not in seen:
                    rest.append(item)
        self.items = [_item(i) for i in [*failed, *rest][:ITEMS_SHOWN]]

    def _others(self) -> None:
        runs = self._session.evals.list(dataset=self._dataset, limit=OTHER_RUNS)
        self.others = [_choice(r.run) for r in runs if r.id != self.run_id]

    def close(self) -> None:
        super().close()
        self._wake.set()
        if self._poller is not None:
            self._poller.join(timeout=POLL_SECONDS * 2)
        if self._events is not None:
            self._events.join(timeout=POLL_SECONDS * 2)


def _run_view(run: Run) -> RunView:
    a = run.aggregates
    model = run.model
    model_text = (f"{model.get('connection')} (built-in)" if model.get("builtin")
                  else f"{model.get('connection')} · {model.get('model')}")  # fmt: skip
    return RunView(
        id=run.id, name=run.name, state=run.state,
        prompt=f"{run.prompt.get('name')} v{run.prompt.get('version')}",
        dataset=f"{run.dataset.get('name')} v{run.dataset.get('version')}", model=model_text,
        items_done=a.items_done, items_total=a.items_total, passed=a.passed, pass_rate=a.pass_rate,
        mean_score=a.mean_score, errors=a.errors, evaluator_errors=a.evaluator_errors,
        latency_p50_ms=a.latency_p50_ms, latency_p95_ms=a.latency_p95_ms, tokens_in=a.tokens_in,
        tokens_out=a.tokens_out, cost=a.cost, unpriced_items=a.unpriced_items,
        error=None if run.error is None else f"{run.error.ename}: {run.error.evalue}".rstrip(": "),
    )  # fmt: skip


def _item(item: ItemResult) -> ItemRow:
    return ItemRow(
        item_id=item.item_id, input=_json(item.input), expected="" if item.expected is None else _json(item.expected),
        output=item.output, error=item.error, passed=item.passed, score=item.score, latency_ms=item.latency_ms,
        scores={name: ScoreCell(score=s.score, passed=s.passed, explanation=s.error or s.explanation)
                for name, s in item.scores.items()},
        trace_id=item.trace_id,
    )  # fmt: skip


def _choice(run: Run) -> RunChoice:
    return RunChoice(id=run.id, name=run.name, state=run.state, created_at=run.created_at.isoformat())


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
