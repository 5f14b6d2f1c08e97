"""What a call cost: the shipped price table (``prices.json``, data) overlaid with a project's own rows.

A model the table does not know is *unpriced* (``None``), never free: a report that shows $0.00 for an
unknown model would be wrong in a way nobody notices. Vendors return dated model names
(``gpt-4o-2024-08-06``), so a name that is not in the table falls back to its longest listed prefix —
but only when what follows looks like a snapshot suffix (a date or ``latest``). ``gpt-4.1-nano`` must
not be priced as ``gpt-4.1`` just because the nano row is missing.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Literal

PriceSource = Literal["shipped", "project"]
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest)(?:-.*)?$")
MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float
    source: PriceSource = "shipped"


@functools.cache
def shipped_prices() -> Mapping[str, Price]:
    """The table inside the package (read once per process; it is part of the wheel)."""
    data = json.loads((resources.files("agiflow_lab.providers") / "prices.json").read_text())
    return {
        name.lower(): Price(float(row["input"]), float(row["output"]), "shipped")
        for name, row in data["models"].items()
    }


@functools.cache
def shipped_as_of() -> str:
    data = json.loads((resources.files("agiflow_lab.providers") / "prices.json").read_text())
    return str(data["as_of"])


class PriceBook:
    def __init__(self, shipped: Mapping[str, Price] | None = None, overrides: Mapping[str, Price] | None = None):
        table = dict(shipped_prices() if shipped is None else shipped)
        for model, price in (overrides or {}).items():
            table[model.lower()] = Price(price.input_per_million, price.output_per_million, "project")
        self._table = table

    def lookup(self, model: str | None) -> tuple[str, Price] | None:
        """The row that prices ``model``: its exact name, else a listed prefix + snapshot suffix."""
        if not model:
            return None
        name = model.lower()
        if (price := self._table.get(name)) is not None:
            return name, price
        cut = len(name)
        while (cut := name.rfind("-", 0, cut)) > 0:
            prefix = name[:cut]
            if prefix in self._table and _SNAPSHOT_SUFFIX.fullmatch(name[cut:]):
                return prefix, self._table[prefix]
        return None

    def cost(self, model: str | None, tokens_in: int | None, tokens_out: int | None) -> float | None:
        """USD for one call; None (unpriced) when the model is unknown or the vendor did not report tokens."""
        if tokens_in is None or tokens_out is None:
            return None
        found = self.lookup(model)
        if found is None:
            return None
        price = found[1]
        return (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / MILLION

    def rows(self) -> list[tuple[str, Price]]:
        return sorted(self._table.items())
