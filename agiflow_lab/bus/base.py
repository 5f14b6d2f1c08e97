"""The bus contract both backends implement, so that switching backend is configuration, never code.

Delivery is at-least-once on both: a message is settled only by an explicit ``ack``, ``retry`` or
``dead``, and anything unsettled when a consumer dies is delivered again. Consumers therefore
deduplicate on ``Message.id`` (see ``agiflow_lab.bus.idempotency``).

Both backends deliver messages with the same key in publish order, one at a time per consumer group:
the next message for a key is not handed out until the previous one is settled, and a message waiting
for a retry holds back the messages behind it. That is what keeps one job's events in order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agiflow_lab.bus.health import BusHealth
from agiflow_lab.errors import InvalidInput

if TYPE_CHECKING:
    from agiflow_lab.config import Settings
    from agiflow_lab.db.database import Database

log = logging.getLogger(__name__)


def new_message_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Message:
    """A delivered message; ``id`` is the idempotency key and survives every redelivery."""

    id: str
    topic: str
    key: str
    payload: dict[str, Any]
    headers: dict[str, str]
    attempt: int
    created_at: datetime


@dataclass(frozen=True)
class Outgoing:
    """A message to publish; the outbox relay fixes ``message_id`` so a re-send is recognisable."""

    topic: str
    key: str
    payload: dict[str, Any]
    message_id: str = field(default_factory=new_message_id)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how fast a failing message is retried before it is dead-lettered."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 300.0
    jitter: float = 0.2

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts

    def backoff(self, attempt: int) -> float:
        """Exponential in the attempt just failed; jitter spreads a burst of failures apart."""
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempt - 1))
        return delay * (1 + random.uniform(0, self.jitter))


class Reject(Exception):
    """Raised by a handler for a message that can never succeed: it is dead-lettered without retries."""


class Delivery(ABC):
    """One message handed to one consumer; settle it exactly once."""

    message: Message

    @property
    @abstractmethod
    def settled(self) -> bool: ...

    @abstractmethod
    async def ack(self) -> None:
        """The handler finished: never deliver this message to this group again."""

    @abstractmethod
    async def retry(self, error: str) -> None:
        """Deliver again after a backoff, or dead-letter it once ``max_attempts`` is reached."""

    @abstractmethod
    async def dead(self, error: str) -> None:
        """Give up now: park the message where an operator can inspect and re-queue it."""

    @abstractmethod
    async def extend(self) -> None:
        """Keep the claim alive during long work (a lease on Postgres; nothing to do on Kafka)."""


Handler = Callable[[Message], Awaitable[None]]


class Consumer(ABC):
    """A group member reading some topics: an async iterator of deliveries, and a context manager.

    At most ``max_in_flight`` deliveries are unsettled at once; iteration waits for a settlement
    before handing out more, so every delivery must be settled or the consumer stalls.
    """

    def __init__(self, topics: Sequence[str], group: str, max_in_flight: int, member: str | None = None) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.topics = tuple(dict.fromkeys(topics))
        self.group = group
        self.max_in_flight = max_in_flight
        self.member = member

    @abstractmethod
    async def start(self) -> None:
        """Join the group (idempotent); returns once this member can receive messages."""

    @abstractmethod
    async def close(self) -> None:
        """Leave the group; unsettled deliveries are redelivered to the remaining members."""

    @abstractmethod
    async def __anext__(self) -> Delivery: ...

    def __aiter__(self) -> Consumer:
        return self

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def run(self, handler: Handler) -> None:
        """Handle deliveries concurrently (up to ``max_in_flight``) and settle each one.

        A handler that returns acks; one that raises ``Reject`` dead-letters; any other exception
        retries with the error text. Runs until cancelled or the consumer is closed.
        """
        async with asyncio.TaskGroup() as tasks:
            async for delivery in self:
                tasks.create_task(_settle(delivery, handler))


async def _settle(delivery: Delivery, handler: Handler) -> None:
    try:
        try:
            await handler(delivery.message)
        except Reject as exc:
            await delivery.dead(str(exc) or type(exc).__name__)
        except Exception as exc:
            log.info("handler failed for %s (attempt %s): %r", delivery.message.id, delivery.message.attempt, exc)
            await delivery.retry(f"{type(exc).__name__}: {exc}")
        else:
            await delivery.ack()
    except Exception:  # settling failed (database or broker down): the message will be redelivered
        log.warning("could not settle message %s", delivery.message.id, exc_info=True)


class Bus(ABC):
    """Topics, keyed messages, consumer groups and explicit acknowledgement."""

    retry: RetryPolicy  # when a failing message is dead-lettered (a handler may act on its last attempt)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, *, retry: RetryPolicy | None = None) -> Bus:
        """Build this backend from the one ``Settings`` (``bus_class`` plug-ins implement this too)."""
        raise InvalidInput(f"{cls.__name__} cannot be built from configuration", {"field": "bus"})

    @property
    def kind(self) -> str:
        """The backend's name as configuration spells it (``PostgresBus`` → ``postgres``)."""
        return type(self).__name__.removesuffix("Bus").lower()

    @cached_property
    def health(self) -> BusHealth:
        """Reachability as this process last saw it: reported by publishers and consumers (and a
        backend's own probe), shown by ``/status``, logged once per outage."""
        return BusHealth(self.kind)

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def publish_batch(self, messages: Sequence[Outgoing]) -> list[str]:
        """Publish in order (per key order is kept); returns the message ids."""

    async def publish(
        self,
        topic: str,
        key: str,
        payload: dict[str, Any],
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Publish one message directly; services should prefer ``outbox.enqueue`` (see there why)."""
        outgoing = Outgoing(topic, key, payload, message_id or new_message_id(), headers or {})
        return (await self.publish_batch([outgoing]))[0]

    @abstractmethod
    def consume(
        self, topics: Sequence[str], group: str, *, max_in_flight: int = 1, member: str | None = None
    ) -> Consumer:
        """A consumer in ``group``: each group receives every message of its topics once.

        ``member`` is a stable name for this consumer across restarts of its process (one per supervised
        worker slot): a member that comes back under its name takes its place at once, where a new member
        would wait for the group to notice the old one is gone (Kafka's static membership; the Postgres
        bus hands out nothing per member, so it needs none)."""

    async def __aenter__(self) -> Bus:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
