"""Choose the bus backend from configuration: the code that uses the bus never names a backend.

``Settings.bus`` is ``postgres``, ``kafka``, or the import path of a :class:`~agiflow_lab.bus.base.Bus`
subclass (``c.AgiflowLab.bus_class``, the way jupyter-scheduler swaps its scheduler): a vendor's backend
plugs in through configuration, and the supervised workers, which get ``AGIFLOW_BUS``, build the same one.
"""

from __future__ import annotations

from dataclasses import replace

from traitlets.utils.importstring import import_item

from agiflow_lab.bus.base import Bus, RetryPolicy
from agiflow_lab.config import Settings
from agiflow_lab.db.database import Database
from agiflow_lab.errors import InvalidInput

KINDS = ("postgres", "kafka")


def bus_class(name: str) -> type[Bus]:
    """The class configuration names; a wrong name is the operator's error, said with the choices."""
    name = name.strip()
    if name.lower() == "postgres":
        from agiflow_lab.bus.postgres import PostgresBus

        return PostgresBus
    if name.lower() == "kafka":
        from agiflow_lab.bus.kafka import KafkaBus

        return KafkaBus
    try:
        found = import_item(name) if "." in name else None
    except (ImportError, AttributeError):
        found = None
    if not (isinstance(found, type) and issubclass(found, Bus)):
        raise InvalidInput(
            f"unknown bus {name!r}; expected one of {', '.join(KINDS)} or the import path of a Bus subclass",
            {"field": "bus"},
        )
    return found


def make_bus(settings: Settings, db: Database, *, retry: RetryPolicy | None = None) -> Bus:
    """The configured bus, not yet started."""
    return bus_class(settings.bus).from_settings(settings, db, retry=retry)


def worker_settings(settings: Settings, bus: str | None, kafka_bootstrap: str | None) -> Settings:
    """A worker's command-line choices over its environment's."""
    return replace(settings, bus=bus or settings.bus, kafka_bootstrap=kafka_bootstrap or settings.kafka_bootstrap)
