"""Choose the bus backend from configuration: the code that uses the bus never names a backend."""

from __future__ import annotations

import os

from agiflow_lab.bus.base import Bus, RetryPolicy
from agiflow_lab.bus.kafka_security import KafkaSecurity
from agiflow_lab.db.database import Database
from agiflow_lab.errors import InvalidInput

KINDS = ("postgres", "kafka")
DEFAULT_PARTITIONS = 4


def make_bus(
    kind: str | None,
    db: Database,
    *,
    kafka_bootstrap: str | None = None,
    kafka_security: KafkaSecurity | None = None,
    partitions: int | None = None,
    retry: RetryPolicy | None = None,
) -> Bus:
    """A bus of ``kind`` (``postgres`` or ``kafka``), not yet started.

    Arguments left as None fall back to ``AGIFLOW_BUS`` (default ``postgres``),
    ``AGIFLOW_KAFKA_BOOTSTRAP``, ``AGIFLOW_KAFKA_USERNAME``/``_PASSWORD``/``_SASL_MECHANISM``/
    ``_SECURITY_PROTOCOL`` and ``AGIFLOW_KAFKA_PARTITIONS``. Settings that apply environment
    overrides themselves (``Settings.with_env``) pass resolved values, which are used as given.
    """
    kind = (kind or os.environ.get("AGIFLOW_BUS") or "postgres").strip().lower()
    if kind == "postgres":
        from agiflow_lab.bus.postgres import PostgresBus

        lease = float(os.environ.get("AGIFLOW_BUS_LEASE_SECONDS") or 30.0)
        return PostgresBus(db, retry=retry, lease_seconds=lease)
    if kind == "kafka":
        from agiflow_lab.bus.kafka import KafkaBus

        bootstrap = kafka_bootstrap or os.environ.get("AGIFLOW_KAFKA_BOOTSTRAP")
        if not bootstrap:
            raise InvalidInput("the kafka bus needs bootstrap servers (AGIFLOW_KAFKA_BOOTSTRAP)", {"field": "bus"})
        if partitions is None:
            partitions = int(os.environ.get("AGIFLOW_KAFKA_PARTITIONS") or DEFAULT_PARTITIONS)
        session_ms = int(os.environ.get("AGIFLOW_KAFKA_SESSION_TIMEOUT_MS") or 10_000)
        from agiflow_lab.config import Settings

        security = kafka_security or Settings().with_env().kafka_security
        return KafkaBus(
            bootstrap, security=security, partitions=partitions, retry=retry, session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(500, session_ms // 3),
        )  # fmt: skip
    raise InvalidInput(f"unknown bus {kind!r}; expected one of {', '.join(KINDS)}", {"field": "bus"})
