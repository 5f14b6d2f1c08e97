"""The span writer: takes the span batches receivers put on the ``spans`` topic and stores them.

A worker role (``agiflow-lab worker --roles spans``), so span writing scales like jobs do: every writer
joins the ``span-writers`` group and the bus spreads the batches. Delivery is at-least-once; the store is
idempotent on (project, trace, span), so a batch delivered again is stored once, and is told so
(``redelivery``) to skip the COPY that would only find its spans there already.

Consuming is ``bus.membership.Membership`` (what the job backend uses for ``job-events`` too): returning
acks, ``Reject`` dead-letters, any other error (the database gone) retries with backoff. A batch that
cannot be read (not a ``SpanBatch``, a body that does not decode) is poison: it never gets better, so it
is dead-lettered with the reason at once, where an operator can see it, and the batches behind it flow.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from agiflow_lab.bus.base import Bus, Message, Reject
from agiflow_lab.bus.membership import Membership
from agiflow_lab.bus.topics import SPANS
from agiflow_lab.db.database import Database
from agiflow_lab.traces.messages import SPAN_WRITERS, SpanBatch
from agiflow_lab.traces.otlp import DecodedBatch, OtlpError, decode_body
from agiflow_lab.traces.store import SpanStore

log = logging.getLogger(__name__)

# A bound on a body after inflating, against a batch that would exhaust memory. Receivers accept 2 MiB
# bodies; this is far above that, so a batch a receiver accepted is never refused here for its size.
MAX_BODY_BYTES = 64 * 1024 * 1024


class SpanWriter:
    """Consumes span batches until stopped; ``start`` returns at once, joining happens in the background
    so a worker's start-up (and a job takeover) never waits for the span topic."""

    def __init__(
        self,
        db: Database,
        bus: Bus,
        store: SpanStore,
        *,
        batch_in_flight: int = 2,
        topic: str = SPANS,
        group: str = SPAN_WRITERS,
        member: str | None = None,
    ) -> None:
        """``batch_in_flight``: batches stored at once; each holds a database connection while it loads.
        ``topic`` and ``group`` are fixed in production and differ only where tests share a broker."""
        self.db = db
        self.bus = bus
        self.store = store
        self.batch_in_flight = batch_in_flight
        self.topic = topic
        self.group = group
        self.member = member
        self.membership = Membership(bus, [topic], group, self._write, max_in_flight=batch_in_flight, member=member,
                                     name="span writer")  # fmt: skip

    def start(self) -> None:
        self.membership.start()

    async def stop(self) -> None:
        """Bounded like the worker's other closes; unsettled batches go back to the group."""
        await self.membership.stop()

    async def _write(self, message: Message) -> None:
        project_id, decoded = _read(message)
        # attempt > 1: this group was handed the batch before, and may have stored it before failing to ack.
        await self.store.load(project_id, decoded.spans, redelivery=message.attempt > 1)


def _read(message: Message) -> tuple[int, DecodedBatch]:
    """The project and spans of a message, or ``Reject`` (dead-letter) when it can never be read."""
    try:
        batch = SpanBatch.model_validate(message.payload)
        decoded = decode_body(batch.request_body(MAX_BODY_BYTES), batch.content_type, None, max_bytes=MAX_BODY_BYTES)
    except (ValidationError, OtlpError) as exc:
        reason = f"unreadable span batch: {type(exc).__name__}: {exc}"
        log.warning("dead-lettering span message %s: %s", message.id, reason)
        raise Reject(reason) from exc
    return batch.project_id, decoded
