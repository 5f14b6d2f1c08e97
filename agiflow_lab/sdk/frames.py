"""DataFrames from API models: one row per model, a column per field, times as tz-aware (UTC) timestamps.

Columns come from the model's fields, so an empty answer is still a frame with the right columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agiflow_lab.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd


def frame(rows: Iterable[dict[str, Any]], columns: Sequence[str], times: Iterable[str] = ()) -> pd.DataFrame:
    import pandas as pd

    table = pd.DataFrame(list(rows), columns=list(columns))
    for column in times:
        table[column] = pd.to_datetime(table[column], utc=True)
    return table


def model_frame(models: Iterable[BaseModel], model: type[BaseModel]) -> pd.DataFrame:
    """Every field of ``model`` as a column; its ``datetime`` fields as timestamps."""
    fields = model.model_fields
    times = [name for name, f in fields.items() if f.annotation in (datetime, datetime | None)]
    return frame((m.model_dump() for m in models), list(fields), times)


def iso(field: str, value: datetime | str | None) -> str | None:
    """A query parameter's time: ISO 8601 text as given, or an aware datetime (a naive one is refused here:
    the server would read it as UTC, which is rarely what a notebook's local ``datetime.now()`` meant)."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} must be timezone-aware (e.g. datetime.now(UTC))", {"field": field})
    return value.isoformat()
