"""Announcing an event to a project's channels, in the caller's transaction (an incident opening, a job failing).

One ``notifications`` message per enabled channel goes to the outbox, so the event and its deliveries commit
together or not at all; the ``Notifier`` consumer performs them. Kept apart from the service so that the job
and alert services can announce without depending on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agiflow_lab.bus import outbox
from agiflow_lab.bus.topics import NOTIFICATIONS
from agiflow_lab.db.database import Conn
from agiflow_lab.notifications import store
from agiflow_lab.notifications.models import DeliveryMessage, Event, EventType, Severity


def event(
    event_type: EventType, severity: Severity, project: str, title: str, body: str = "", *,
    data: dict[str, Any] | None = None, at: datetime | None = None,
) -> Event:  # fmt: skip
    return Event(event=event_type, severity=severity, project=project, title=title, body=body, data=data or {},
                 at=at or datetime.now(UTC))  # fmt: skip


async def announce(
    conn: Conn, project_id: int, what: Event, *, only_channel: str | None = None, except_channel: str | None = None
) -> list[str]:
    """In the caller's transaction: one delivery message per enabled channel of the project (or just
    ``only_channel``, enabled or not; never ``except_channel``); the message ids."""
    rows = await store.channels(conn, project_id, enabled_only=only_channel is None)
    ids = []
    for row in rows:
        if (only_channel is not None and row["id"] != only_channel) or row["id"] == except_channel:
            continue
        message = DeliveryMessage(project_id=project_id, channel_id=row["id"], event=what)
        key = f"{project_id}:{row['id']}"  # a channel's deliveries in order; one slow receiver holds back no other
        ids.append(await outbox.enqueue(conn, NOTIFICATIONS, key, message.model_dump(mode="json")))
    return ids
