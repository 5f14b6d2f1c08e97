"""Static HTML views of SDK objects (``_repr_html_``): compact, and safe to show whatever the data holds.

Every value goes through ``html.escape``, attribute values included; nothing here emits a script, an event
handler or a URL. These are what an executed report (papermill, nbconvert) keeps, and what a notebook shows
where widgets cannot run. Colours are JupyterLab's theme variables, with fallbacks for pages outside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agiflow_lab.datasets.models import Dataset
    from agiflow_lab.evals.models import Comparison, Run
    from agiflow_lab.jobs.models import Job
    from agiflow_lab.prompts.models import PromptDiff, PromptVersion
    from agiflow_lab.sdk.trace import Trace

BOX = ("font-family: var(--jp-ui-font-family, sans-serif); color: var(--jp-ui-font-color1, inherit); "
       "border: 1px solid var(--jp-border-color2, #ccc); border-radius: 2px; padding: 6px 8px; max-width: 100%")  # fmt: skip
PRE = ("margin: 4px 0; padding: 4px 6px; white-space: pre-wrap; word-break: break-word; "
       "background: var(--jp-layout-color2, rgba(127,127,127,.1)); font-family: var(--jp-code-font-family, monospace)")  # fmt: skip
MUTED = "color: var(--jp-ui-font-color2, #777)"
CELL = "text-align: left; padding: 1px 6px; border-bottom: 1px solid var(--jp-border-color2, #ddd)"
TEXT_LIMIT = 2000


def e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return escape(value if isinstance(value, str) else str(value), quote=True)


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def box(kind: str, title: str, *parts: str) -> str:
    head = f'<div><strong>{e(title)}</strong> <span style="{MUTED}">{e(kind)}</span></div>'
    return f'<div class="agiflow-static" style="{BOX}">{head}{"".join(parts)}</div>'


def line(*facts: Any) -> str:
    shown = " · ".join(e(f) for f in facts if f not in (None, ""))
    return f'<div style="{MUTED}">{shown}</div>'


def pre(text: str) -> str:
    return f'<pre style="{PRE}">{e(clip(text))}</pre>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f'<th style="{CELL}">{e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f'<td style="{CELL}">{e(clip(_text(c), 200))}</td>' for c in row) + "</tr>"
                   for row in rows)  # fmt: skip
    return f'<table style="border-collapse: collapse"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _text(value: Any) -> str:
    if value is None:
        return "–"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# --- one function per SDK object ------------------------------------------------------------------------------


def prompt_html(data: PromptVersion, label: str | None = None) -> str:
    if isinstance(data.template, str):
        template = pre(data.template)
    else:
        template = "".join(f'<div style="{MUTED}">{e(m.role)}</div>{pre(m.content)}' for m in data.template)
    labels = ", ".join(data.labels)
    return box(
        "prompt", f"{data.name} v{data.version}",
        line(data.type, f"labels: {labels}" if labels else "", f"fetched by label {label}" if label else "",
             data.commit_message, f"{data.created_by}, {data.created_at:%Y-%m-%d %H:%M} UTC"),
        template,
        line("variables: " + ", ".join(data.variables)) if data.variables else "",
        line("config: " + json.dumps(data.config, ensure_ascii=False)) if data.config else "",
    )  # fmt: skip


def diff_html(diff: PromptDiff) -> str:
    lines = "".join(f"<div>{e(x)}</div>" for x in diff.template_diff[:500]) or "templates are identical"
    changes = table(["parameter", "before", "after"], [(c.key, c.before, c.after) for c in diff.config_changes])
    return box(
        "version diff", f"{diff.name} v{diff.from_version} → v{diff.to_version}",
        f'<div style="{PRE}">{lines}</div>',
        changes if diff.config_changes else "",
        line("variables added: " + ", ".join(diff.variables_added) if diff.variables_added else "",
             "variables removed: " + ", ".join(diff.variables_removed) if diff.variables_removed else ""),
    )  # fmt: skip


def run_html(run: Run) -> str:
    a = run.aggregates
    cost = "unpriced" if a.cost is None and a.unpriced_items else ("–" if a.cost is None else f"${a.cost:.4f}")
    evaluators = table(
        ["evaluator", "type", "pass rate", "mean score", "threshold", "errors"],
        [(x.name, x.type, pct(x.pass_rate), x.mean_score, x.threshold, x.errors) for x in a.evaluators],
    )
    failure = f"failed: {run.error.ename}: {run.error.evalue}" if run.error else ""
    return box(
        "evaluation run", run.name or run.id,
        line(run.state, f"{a.items_done}/{a.items_total} items", f"pass rate {pct(a.pass_rate)}", f"{a.errors} errors",
             f"p95 {a.latency_p95_ms:.0f} ms" if a.latency_p95_ms is not None else "", cost, failure),
        line(f"prompt {run.prompt.get('name')} v{run.prompt.get('version')}",
             f"dataset {run.dataset.get('name')} v{run.dataset.get('version')}",
             f"model {run.model.get('connection')}" + (" (built-in echo)" if run.model.get("builtin") else
                                                       f" {run.model.get('model') or ''}"), f"run {run.id}"),
        evaluators if a.evaluators else "",
    )  # fmt: skip


def comparison_html(comparison: Comparison) -> str:
    runs = comparison.runs
    summary = table(["run", "state", "items", "pass rate", "errors", "p95 latency ms"],
                    [(f"{r.name} ({r.id[:8]})", r.state, r.aggregates.items_done, pct(r.aggregates.pass_rate),
                      r.aggregates.errors, r.aggregates.latency_p95_ms) for r in runs])  # fmt: skip
    items = table(["item", "change", "Δ score", "input", *(f"output {n}" for n in range(len(runs)))],
                  [(i.item_id, i.change, i.score_delta, i.input, *(None if r is None else r.output for r in i.results))
                   for i in comparison.items[:50]])  # fmt: skip
    return box(
        "run comparison", " vs ".join(r.name or r.id[:8] for r in runs),
        line(f"{comparison.regressed} regressed", f"{comparison.improved} improved",
             f"{comparison.unchanged} unchanged ({comparison.score_up} score up, {comparison.score_down} score down)",
             f"{comparison.missing} missing" if comparison.missing else ""),
        summary,
        items if comparison.items else "",
    )  # fmt: skip


def dataset_html(info: Dataset) -> str:
    return box(
        "dataset", info.name,
        line(f"v{info.latest_version}", f"{info.item_count} items", "archived" if info.archived else "",
             f"updated {info.updated_at:%Y-%m-%d %H:%M} UTC"),
        f"<div>{e(clip(info.description, 500))}</div>" if info.description else "",
    )  # fmt: skip


def job_html(job: Job) -> str:
    took = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    failure = f"{job.error.ename}: {job.error.evalue}" if job.error else ""
    return box(
        "job", job.notebook,
        line(job.state, f"attempt {job.attempts}/{job.max_attempts}",
             f"cell {job.cells_done}/{job.cells_total}" if job.cells_total else "",
             f"{took:.1f} s" if took is not None else "", f"by {job.submitted_by}", f"job {job.id}"),
        line("parameters: " + json.dumps(job.parameters, ensure_ascii=False, default=str)) if job.parameters else "",
        pre(failure) if failure else "",
        pre(_text(job.result)) if job.result is not None else "",
    )  # fmt: skip


def trace_html(trace: Trace) -> str:
    rows = []
    for depth, span in trace.walk():
        name = "\u00a0\u00a0" * depth + span.name
        counted = span.tokens_in is not None or span.tokens_out is not None
        tokens = f"{span.tokens_in or 0}→{span.tokens_out or 0}" if counted else ""
        rows.append((name, span.span_type, span.model or "", f"{span.duration_ms:.1f}", tokens,
                     span.status + (f": {span.status_message}" if span.status_message else "")))  # fmt: skip
    scores = ", ".join(f"{s.name}={s.value}" for s in trace.scores)
    return box(
        "trace", trace.trace_id,
        line(f"{len(trace.spans)} spans", f"scores: {scores}" if scores else ""),
        table(["span", "type", "model", "ms", "tokens", "status"], rows),
    )  # fmt: skip
