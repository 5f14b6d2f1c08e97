"""A group member that stays joined: the loop behind every long-lived consumer of a topic.

The job backend (``job-events``) and the span writers (``spans``) need the same thing: run a handler on
each message until stopped, join again after a failed join or a lost consumer on a capped backoff (a
broker or database outage is reported once, by the bus's health, not per attempt), and stop within
bounded steps whatever state the bus is in. Settling is ``Consumer.run``'s: returning acks, ``Reject``
dead-letters, any other error retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from agiflow_lab.bus.base import Bus, Consumer, Message
from agiflow_lab.core.shutdown import finish_within

log = logging.getLogger(__name__)

RETRY_MAX = 10.0  # cap of the backoff while the consumer cannot join (broker or database down)
STEP_SECONDS = 2.0  # each step of stop(): a bus or database that is gone costs this, not a hang


class Membership:
    """``handler`` on every message of ``topics`` for ``group``, from ``start`` until ``stop``."""

    def __init__(
        self, bus: Bus, topics: Sequence[str], group: str, handler: Callable[[Message], Awaitable[None]], *,
        max_in_flight: int = 1, member: str | None = None, name: str,
    ) -> None:  # fmt: skip
        """``name`` says what the consumer does, in logs ("job events", "span writer")."""
        self.bus = bus
        self.topics = tuple(topics)
        self.group = group
        self.handler = handler
        self.max_in_flight = max_in_flight
        self.member = member
        self.name = name
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Returns at once: joining happens in the background, so no start-up waits for the bus."""
        self._task = asyncio.create_task(self._run(), name=f"agiflow-{self.name.replace(' ', '-')}")

    async def stop(self) -> None:
        """Unsettled messages go back to the group."""
        self._stopping = True
        # Close the consumer first: it ends ``run`` cleanly (a cancel can be swallowed by a pool wait in
        # psycopg_pool on 3.11); the cancel below is for a join still in progress.
        if self._consumer is not None:
            await finish_within(STEP_SECONDS, self._consumer.close(), f"the {self.name} consumer")
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=STEP_SECONDS)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            consumer = self.bus.consume(self.topics, self.group, max_in_flight=self.max_in_flight, member=self.member)
            self._consumer = consumer
            try:
                await consumer.start()
                failures = 0
                await consumer.run(self.handler)  # returns once the consumer is closed
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1 and not self.bus.health.is_down:
                    log.warning("%s consumer cannot run (%s: %s); retrying", self.name, type(exc).__name__, exc)
                await finish_within(STEP_SECONDS, consumer.close(), f"the {self.name} consumer")
                await asyncio.sleep(min(RETRY_MAX, 0.5 * 2 ** (failures - 1)))
