"""How SDK objects show themselves in a notebook: their widget where a widget can live, else static HTML."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

JOB_ENV = "AGIFLOW_JOB_ID"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
Bundle = tuple[dict[str, Any], dict[str, Any]]


def widget_frontend() -> bool:
    """Whether a live widget can be shown: in an IPython kernel (JupyterLab, Notebook 7, VS Code) that is not an
    AGIFlow job's. A job's kernel is run by papermill, where nobody watches and the report keeps static HTML;
    a plain script or a terminal IPython has no kernel at all."""
    if os.environ.get(JOB_ENV) or "ipykernel" not in sys.modules:
        return False
    from IPython.core.getipython import get_ipython

    shell = get_ipython()  # type: ignore[no-untyped-call]
    return shell is not None and getattr(shell, "kernel", None) is not None


def bundle(html: str, text: str, widget: Callable[[], Any] | None) -> Bundle:
    """A display bundle: the widget's (with the static HTML beside it, which reports and non-widget frontends
    show) when a widget frontend is there, else the static HTML alone. A widget that cannot be built (the
    server is unreachable) falls back to the static view rather than hiding the object."""
    data: dict[str, Any] = {"text/plain": text, "text/html": html}
    if widget is None or not widget_frontend():
        return data, {}
    try:
        shown = widget()
        widget_data, metadata = shown._repr_mimebundle_()
    except Exception:  # the static view is always there to fall back on
        return data, {}
    return {**data, WIDGET_MIME: widget_data[WIDGET_MIME]}, dict(metadata or {})
