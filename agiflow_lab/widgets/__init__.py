"""Widgets for notebooks (anywidget on ipywidgets 8: JupyterLab 4, Notebook 7, VS Code; no labextension of ours).

```python
from agiflow_lab.widgets import PromptEditor, EvalRunView, TraceView, MetricsView, DatasetView

PromptEditor(client, "qa")        # edit, render live, try it, save as a version, move a label, diff
EvalRunView(client, run.id)       # live progress, evaluators, items (failures first), compare
TraceView(client, trace_id)       # span tree, the selected span's input and output
MetricsView(client, hours=24)     # count, error rate, p95 latency, tokens, cost
DatasetView(client, "qa")         # items a page at a time, filter
```

SDK objects display themselves: a ``Prompt``, ``EvalRun``, ``Dataset`` and ``Trace`` show their widget in a
notebook (static HTML in reports); ``run.wait()`` shows the live ``EvalRunView``.
"""

from __future__ import annotations

from agiflow_lab.widgets.dataset_view import DatasetView
from agiflow_lab.widgets.eval_run import EvalRunView
from agiflow_lab.widgets.metrics_view import MetricsView
from agiflow_lab.widgets.prompt_editor import PromptEditor
from agiflow_lab.widgets.trace_view import TraceView

__all__ = ["DatasetView", "EvalRunView", "MetricsView", "PromptEditor", "TraceView"]
