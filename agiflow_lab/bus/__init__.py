"""The message bus: one interface, a Postgres queue (default) or Kafka behind it, fed by an outbox."""

from agiflow_lab.bus.base import (
    Bus,
    Consumer,
    Delivery,
    Message,
    Outgoing,
    Reject,
    RetryPolicy,
)
from agiflow_lab.bus.factory import make_bus
from agiflow_lab.bus.idempotency import first_time
from agiflow_lab.bus.outbox import OutboxRelay, enqueue
from agiflow_lab.bus.topics import ALL_TOPICS, JOB_EVENTS, JOBS, NOTIFICATIONS, SPANS

__all__ = [
    "ALL_TOPICS",
    "JOBS",
    "JOB_EVENTS",
    "NOTIFICATIONS",
    "SPANS",
    "Bus",
    "Consumer",
    "Delivery",
    "Message",
    "OutboxRelay",
    "Outgoing",
    "Reject",
    "RetryPolicy",
    "enqueue",
    "first_time",
    "make_bus",
]
