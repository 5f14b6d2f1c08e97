"""Helpers for code running inside a task notebook.

A notebook returns a JSON result to the job that ran it by calling :func:`emit_result`. The value is
published as a display output with the MIME type :data:`RESULT_MIME_TYPE`; the worker's runner takes
the last such output of the executed notebook as the job's result. The output also carries a short
``text/plain`` rendering, so the executed notebook stays readable as a report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TypeAlias

RESULT_MIME_TYPE = "application/vnd.agiflow.result+json"

JSONValue: TypeAlias = "Mapping[str, JSONValue] | Sequence[JSONValue] | str | int | float | bool | None"


def emit_result(result: JSONValue) -> None:
    """Return ``result`` (any JSON value) to the job running this notebook; the last call wins.

    Raises ``TypeError``/``ValueError`` when ``result`` is not JSON-serialisable (NaN included).
    """
    text = json.dumps(result, allow_nan=False)
    bundle = {RESULT_MIME_TYPE: json.loads(text), "text/plain": f"agiflow result: {_shorten(text)}"}
    from IPython.core.getipython import get_ipython

    if get_ipython() is None:  # type: ignore[no-untyped-call]
        print(bundle["text/plain"])  # plain Python (no kernel): nothing to publish to
        return
    from IPython.display import display

    display(bundle, raw=True)  # type: ignore[no-untyped-call]


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
