"""``client.evals``: start evaluation runs, follow them live, read results as DataFrames, compare runs."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from agiflow_lab.evals.models import Comparison, ItemResult, Run
from agiflow_lab.sdk._wait import until_final
from agiflow_lab.sdk.errors import ApiError
from agiflow_lab.sdk.transport import Transport, segment

if TYPE_CHECKING:
    import pandas as pd

    from agiflow_lab.widgets._display import Bundle


def parse_ref(text: str, *, version_sep: str = ":", label_sep: str | None = "@") -> dict[str, Any]:
    """``"qa"``, ``"qa:3"`` (version) or ``"qa@production"`` (label) → a reference body."""
    if label_sep and label_sep in text:
        name, label = text.rsplit(label_sep, 1)
        return {"name": name, "label": label}
    if version_sep in text:
        name, version = text.rsplit(version_sep, 1)
        if version.isdigit():
            return {"name": name, "version": int(version)}
    return {"name": text}


def evaluator_spec(spec: str | dict[str, Any]) -> dict[str, Any]:
    return {"type": spec} if isinstance(spec, str) else dict(spec)


class Evals:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _base(self) -> str:
        return f"projects/{segment(self.project)}/evals"

    def run(
        self,
        prompt: str,
        dataset: str,
        *,
        evaluators: Sequence[str | dict[str, Any]] = (),
        output_dataset: str | None = None,
        connection: str = "echo",
        model: str | None = None,
        params: dict[str, Any] | None = None,
        name: str = "",
        concurrency: int = 8,
        max_retries: int = 4,
        request_timeout: float = 60,
        idempotency_key: str | None = None,
        wait: bool = False,
        progress: bool = True,
    ) -> EvalRun:
        """Start a run of ``prompt`` (``"name"``, ``"name@label"`` or ``"name:version"``; default label
        ``latest``) over ``dataset`` (``"name"`` or ``"name:version"``) through ``connection`` (default: the
        built-in ``echo``, which returns the rendered prompt and calls no model). With ``output_dataset`` it is
        a batch inference: once every item is done, the items with their outputs (``metadata.output``) are
        written as that dataset, a new version if it exists; ``evaluators`` may then be left out."""
        body = {
            "name": name, "prompt": parse_ref(prompt), "dataset": parse_ref(dataset, label_sep=None),
            "model": {"connection": connection, "model": model, "params": params or {}},
            "evaluators": [evaluator_spec(e) for e in evaluators], "concurrency": concurrency,
            "max_retries": max_retries, "request_timeout": request_timeout, "idempotency_key": idempotency_key,
            "output_dataset": output_dataset,
        }  # fmt: skip
        handle = EvalRun(self, Run.model_validate(self._t.request("POST", f"{self._base()}/runs", json=body)))
        if wait:
            handle.wait(progress=progress)
        return handle

    def get(self, run_id: str) -> EvalRun:
        return EvalRun(self, self._get(run_id))

    def _get(self, run_id: str) -> Run:
        return Run.model_validate(self._t.request("GET", f"{self._base()}/runs/{segment(run_id)}"))

    def list(self, *, dataset: str | None = None, prompt: str | None = None, limit: int = 20) -> builtins.list[EvalRun]:
        page = self._t.request("GET", f"{self._base()}/runs", params={"dataset": dataset, "prompt": prompt,
                                                                      "limit": limit})  # fmt: skip
        return [EvalRun(self, Run.model_validate(item)) for item in page["items"]]

    def compare(self, *runs: EvalRun | str) -> RunComparison:
        ids = [r.id if isinstance(r, EvalRun) else r for r in runs]
        return RunComparison(self, ids)

    def evaluator_types(self) -> builtins.list[dict[str, Any]]:
        items: builtins.list[dict[str, Any]] = self._t.request("GET", f"{self._base()}/evaluators")["items"]
        return items


class EvalRun:
    """A handle on one run. ``wait()`` shows the run live (in a notebook its ``EvalRunView``; elsewhere a tqdm
    bar) and returns when the run has finished. In a notebook the run shows itself as its ``EvalRunView``."""

    def __init__(self, evals: Evals, run: Run) -> None:
        self._evals = evals
        self.run = run

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def state(self) -> str:
        return self.run.state

    @property
    def aggregates(self) -> Any:
        return self.run.aggregates

    def refresh(self) -> Run:
        self.run = self._evals._get(self.id)
        return self.run

    def wait(self, timeout: float | None = None, *, progress: bool = True) -> Run:
        view = self._live_view() if progress else None
        if view is not None:
            shown: Run = until_final(self.refresh, _state, what=f"run {self.id}", timeout=timeout, on_each=view.show)
            return shown
        return self._wait_bar(timeout, progress)

    def _live_view(self) -> Any:
        """An ``EvalRunView`` fed by ``wait()``'s own polling, displayed; None outside a widget frontend."""
        from agiflow_lab.widgets._display import widget_frontend

        if not widget_frontend():
            return None
        from IPython.display import display

        from agiflow_lab.widgets import EvalRunView
        from agiflow_lab.widgets._session import Session

        try:
            view = EvalRunView(Session.over(self._evals._t, self._evals.project), self.id, poll=False, current=self.run)
        except ApiError:  # it could not list the other runs: the text bar still shows the progress
            return None
        display(view)  # type: ignore[no-untyped-call]
        return view

    def _wait_bar(self, timeout: float | None, progress: bool) -> Run:
        from tqdm.auto import tqdm

        bar = tqdm(total=self.run.aggregates.items_total, desc=self.run.name, unit="item", disable=not progress)

        def show(run: Run) -> None:
            agg = run.aggregates
            bar.update(agg.items_done - bar.n)
            bar.set_postfix(state=run.state, pass_rate=_pct(agg.pass_rate), errors=agg.errors, refresh=False)

        try:
            return until_final(self.refresh, _state, what=f"run {self.id}", timeout=timeout, on_each=show)
        finally:
            bar.close()

    def cancel(self) -> Run:
        self.run = Run.model_validate(
            self._evals._t.request("POST", f"{self._evals._base()}/runs/{segment(self.id)}/cancel")
        )
        return self.run

    def result_items(self, *, failed_only: bool = False) -> Iterator[ItemResult]:
        path = f"{self._evals._base()}/runs/{segment(self.id)}/results"
        for item in self._evals._t.items(path, {"failed_only": str(failed_only).lower()}, page_size=1000):
            yield ItemResult.model_validate(item)

    def results(self, *, failed_only: bool = False) -> pd.DataFrame:
        """One row per item: input, expected, output, error, latency, tokens, cost, and per evaluator
        ``<name>.score`` / ``<name>.passed`` / ``<name>.explanation``."""
        import pandas as pd

        rows = [_flat(item) for item in self.result_items(failed_only=failed_only)]
        return pd.DataFrame(rows).set_index("item_id") if rows else pd.DataFrame()

    def compare(self, *others: EvalRun | str) -> RunComparison:
        """This run is the baseline; the last of ``others`` is classified against it."""
        return self._evals.compare(self, *others)

    def __repr__(self) -> str:
        agg = self.run.aggregates
        return (f"<EvalRun {self.id} {self.run.name!r} {self.run.state}: {agg.items_done}/{agg.items_total} items, "
                f"pass rate {_pct(agg.pass_rate)}>")  # fmt: skip

    def _repr_html_(self) -> str:
        from agiflow_lab.widgets._html import run_html

        return run_html(self.run)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Bundle:
        from agiflow_lab.widgets._display import bundle

        def view() -> Any:
            from agiflow_lab.widgets import EvalRunView
            from agiflow_lab.widgets._session import Session

            return EvalRunView(Session.over(self._evals._t, self._evals.project), self.id)

        return bundle(self._repr_html_(), repr(self), view)


class RunComparison:
    def __init__(self, evals: Evals, run_ids: list[str]) -> None:
        self._evals = evals
        self.run_ids = run_ids
        self.first = self._page(None, None)

    def _page(self, change: str | None, cursor: str | None) -> Comparison:
        params = {"runs": ",".join(self.run_ids), "change": change, "cursor": cursor, "limit": 500}
        return Comparison.model_validate(self._evals._t.request("GET", f"{self._evals._base()}/compare", params=params))

    @property
    def runs(self) -> list[Run]:
        return self.first.runs

    @property
    def regressed(self) -> int:
        return self.first.regressed

    @property
    def improved(self) -> int:
        return self.first.improved

    @property
    def unchanged(self) -> int:
        """Same verdict in both runs, whatever the scores did (see ``score_up`` / ``score_down``)."""
        return self.first.unchanged

    @property
    def missing(self) -> int:
        return self.first.missing

    @property
    def score_up(self) -> int:
        """Unchanged items whose score rose: better, but not enough to change the verdict."""
        return self.first.score_up

    @property
    def score_down(self) -> int:
        return self.first.score_down

    def summary(self) -> pd.DataFrame:
        """Aggregates side by side: one column per run."""
        import pandas as pd

        columns = {}
        for run in self.runs:
            a = run.aggregates
            column = {"items": a.items_done, "pass rate": a.pass_rate, "mean score": a.mean_score,
                      "errors": a.errors, "latency p50 ms": a.latency_p50_ms, "latency p95 ms": a.latency_p95_ms,
                      "tokens in": a.tokens_in, "tokens out": a.tokens_out,
                      "cost": "unpriced" if a.cost is None and a.unpriced_items else a.cost}  # fmt: skip
            for e in a.evaluators:
                column[f"{e.name} pass rate"] = e.pass_rate
                column[f"{e.name} mean score"] = e.mean_score
            columns[f"{run.name} ({run.id[:8]})"] = column
        return pd.DataFrame(columns)

    def items(self, change: str | None = None) -> pd.DataFrame:
        """Every item whose verdict changed (or those of one ``change``: ``"unchanged"`` lists the rest with their
        ``score_delta``), with each run's output, score and pass."""
        import pandas as pd

        rows = []
        page, cursor = (self.first, self.first.next_cursor) if change is None else (self._page(change, None), None)
        while True:
            for item in page.items:
                row: dict[str, Any] = {"item_id": item.item_id, "change": item.change, "score_delta": item.score_delta,
                                       "input": item.input, "expected": item.expected}  # fmt: skip
                for n, result in enumerate(item.results):
                    row[f"run{n}.output"] = None if result is None else result.output
                    row[f"run{n}.score"] = None if result is None else result.score
                    row[f"run{n}.passed"] = None if result is None else result.passed
                rows.append(row)
            cursor = page.next_cursor
            if not cursor:
                break
            page = self._page(change, cursor)
        return pd.DataFrame(rows).set_index("item_id") if rows else pd.DataFrame()

    def __repr__(self) -> str:
        return (f"<RunComparison {len(self.run_ids)} runs: {self.regressed} regressed, {self.improved} improved, "
                f"{self.unchanged} unchanged ({self.score_up} score up, {self.score_down} score down)>")  # fmt: skip

    def _repr_html_(self) -> str:
        from agiflow_lab.widgets._html import comparison_html

        return comparison_html(self.first)


def _flat(item: ItemResult) -> dict[str, Any]:
    row = item.model_dump(exclude={"scores"})
    for name, score in item.scores.items():
        row[f"{name}.score"] = score.score
        row[f"{name}.passed"] = score.passed
        row[f"{name}.explanation"] = score.error or score.explanation
    return row


def _state(run: Run) -> str:
    return run.state


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


__all__ = ["ApiError", "EvalRun", "Evals", "RunComparison"]
