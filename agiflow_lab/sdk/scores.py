"""``client.scores``: score a trace or one of its spans (numeric, categorical or boolean), read and delete scores.

A score's type is its value's: ``True``/``False`` is boolean, a number numeric, text categorical. Scores
given through the SDK are recorded with source ``api`` (an API key) or ``human`` (a signed-in user).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agiflow_lab.sdk.frames import model_frame
from agiflow_lab.sdk.transport import Transport, segment
from agiflow_lab.traces.results import Score, ScoreSource, ScoreValue

if TYPE_CHECKING:
    import pandas as pd

PAGE = 200


class Scores:
    def __init__(self, transport: Transport, project: str) -> None:
        self._t = transport
        self.project = project

    def _base(self) -> str:
        return f"projects/{segment(self.project)}/scores"

    def create(
        self, trace_id: str, name: str, value: ScoreValue, *, span_id: str | None = None, comment: str | None = None
    ) -> Score:
        """Score a trace (or, with ``span_id``, one of its spans); the trace need not be stored yet."""
        body = {"trace_id": trace_id, "span_id": span_id, "name": name, "value": value, "comment": comment}
        answer = self._t.request("POST", self._base(), json={k: v for k, v in body.items() if v is not None})
        return Score.model_validate(answer)

    def list(
        self,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
        name: str | None = None,
        source: ScoreSource | None = None,
        limit: int | None = 1000,
    ) -> pd.DataFrame:
        """Scores, newest first, one row each (the API's ``Score`` fields), up to ``limit`` (None: all)."""
        model = Score
        params = {"trace_id": trace_id, "span_id": span_id, "name": name, "source": source}
        rows = self._t.items(self._base(), params, limit=limit, page_size=PAGE)
        return model_frame((model.model_validate(r) for r in rows), model)

    def delete(self, score_id: str) -> None:
        self._t.request("DELETE", f"{self._base()}/{segment(str(score_id))}")
