"""Trace ingestion: an OTLP export request from an instrumented app → one message on the ``spans`` topic.

The receiver validates and publishes; span writers store (ARCHITECTURE.md, point 9). A 200 must mean the
batch is durable on the bus, so it is published with ``bus.publish_batch`` while the sender waits, not
through the outbox: the Postgres bus answers once its transaction has committed, Kafka once every in-sync
replica has it (acks=all). When the bus cannot take it, the sender gets a 503 with ``Retry-After`` and
keeps the batch (OTLP exporters retry 503), so nothing is ever accepted and then lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from agiflow_lab.authz.enforcer import Authorizer
from agiflow_lab.authz.policy import WRITE
from agiflow_lab.bus.base import Bus, Outgoing
from agiflow_lab.bus.topics import SPANS
from agiflow_lab.core.actor import Actor
from agiflow_lab.errors import Unavailable
from agiflow_lab.projects.service import ProjectService
from agiflow_lab.traces._inflate import decode_content
from agiflow_lab.traces.messages import SpanBatch
from agiflow_lab.traces.otlp import CheckedBatch, check_body, media_type
from agiflow_lab.traces.records import Rejected

log = logging.getLogger(__name__)

RESOURCE = "agiflow:traces"
# A body may be up to ``max_body_bytes`` on the wire; once gzip/deflate is undone it may be this many times
# that. OTLP protobuf compresses 5-10×, so 4× lets nearly every compressed batch a sender can fit under the
# wire limit through, while a decompression bomb still costs at most 4 × 2 MiB = 8 MiB before it is refused.
# (A batch near 8 MiB is ~1 MB once SpanBatch recompresses it: over Kafka's default message size, which then
# fails the publish and answers 503; raise the topic's max.message.bytes if senders batch that much.)
DECOMPRESSED_FACTOR = 4
RETRY_AFTER_SECONDS = 5  # what a 503 asks the exporter to wait: long enough for a bus restart to show
OUTSIDE_STORED_DAYS = "start time outside the days the span store keeps"


class IngestUnavailable(Unavailable):
    """The bus did not take the batch: 503, and the sender should send it again after ``retry_after``."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message, {"retry_after": retry_after})
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What the OTLP response reports: ``rejected`` spans and why (``message``), after ``accepted`` were published."""

    accepted: int
    rejected: int
    message: str


class TraceIngest:
    """Checks who may send traces where, validates a request, publishes it whole to ``SPANS``.

    ``accepts`` is the span store's own day window (``PostgresSpanStore.accepts``), passed in rather than
    restated so the receiver refuses exactly the spans the store would drop, and says so to the sender
    instead of answering 200 for spans that are never stored."""

    def __init__(
        self,
        projects: ProjectService,
        authz: Authorizer,
        bus: Bus,
        *,
        max_body_bytes: int,
        accepts: Callable[[int], bool],
    ) -> None:
        self.projects = projects
        self.authz = authz
        self.bus = bus
        self.max_decoded_bytes = max_body_bytes * DECOMPRESSED_FACTOR
        self.accepts = accepts

    async def accept(
        self, actor: Actor, project: str, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> IngestResult:
        """Publish what can be stored of one export request; 403 unless ``actor`` may write the project's
        traces, 404 if it does not exist, 400/413/415 for a body that cannot be read, 503 if the bus is down."""
        self.authz.check(actor, project, RESOURCE, WRITE)
        project_id = await self.projects.resolve_id(project)
        # Checking and compressing are CPU work on up to max_decoded_bytes (milliseconds for a large batch):
        # off the event loop so other requests are not stalled behind them.
        batch, message = await asyncio.to_thread(self._prepare, project_id, body, content_type, content_encoding)
        if message is not None:
            await self._publish(Outgoing(SPANS, batch.spans[0].trace_id, message.model_dump(mode="json")))
        return IngestResult(len(batch.spans), len(batch.rejected), batch.partial_success_message())

    def _prepare(
        self, project_id: int, body: bytes, content_type: str | None, content_encoding: str | None
    ) -> tuple[CheckedBatch, SpanBatch | None]:
        """What the writers will take of the request, and the message carrying it to them (None if they would
        take nothing). The body goes with its Content-Encoding undone: ``SpanBatch`` recompresses it one way
        for every writer."""
        data = decode_content(body, content_encoding, self.max_decoded_bytes)
        batch = check_body(data, content_type, None, max_bytes=self.max_decoded_bytes)
        self._reject_outside_window(batch)
        if not batch.spans:
            return batch, None
        return batch, SpanBatch.of(project_id, media_type(content_type), data, datetime.now(UTC), len(batch.spans))

    def _reject_outside_window(self, batch: CheckedBatch) -> None:
        """Move spans the store would drop into ``rejected``, with their document index, as the decoder does
        (``Rejected.index`` counts every span of the request; accepted spans fill the indices not rejected)."""
        if all(self.accepts(span.start_ns) for span in batch.spans):
            return
        refused = {r.index for r in batch.rejected}
        indices = (i for i in range(len(batch.spans) + len(batch.rejected)) if i not in refused)
        kept = []
        for index, span in zip(indices, batch.spans, strict=False):
            if self.accepts(span.start_ns):
                kept.append(span)
            else:
                batch.rejected.append(Rejected(index, OUTSIDE_STORED_DAYS))
        batch.spans = kept
        batch.rejected.sort(key=lambda r: r.index)

    async def _publish(self, message: Outgoing) -> None:
        try:
            await self.bus.publish_batch([message])
        except Exception as exc:  # any bus failure: the batch is not durable, so it must not be a 200
            log.warning("span batch not published (%s: %s); answering 503", type(exc).__name__, exc)
            raise IngestUnavailable("the message bus did not take the batch; send it again later") from exc
