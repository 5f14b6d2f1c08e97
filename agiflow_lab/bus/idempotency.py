"""Exactly-once effects on top of at-least-once delivery.

Both backends may deliver a message more than once (a lease expired, a consumer died before its
commit, the outbox re-sent a batch). A consumer calls ``first_time`` inside the same transaction as
the state change the message causes: the marker and the change commit together, so a redelivery finds
the marker and skips the work, and a rolled-back attempt leaves no marker behind. A concurrent
duplicate blocks on the primary key until the first transaction ends, then sees its outcome.
"""

from __future__ import annotations

from datetime import timedelta

from agiflow_lab.db.database import Conn


async def first_time(conn: Conn, consumer: str, message_id: str) -> bool:
    """True exactly once per (consumer, message id) among committed transactions."""
    cur = await conn.execute(
        """INSERT INTO control.processed_messages (consumer, message_id) VALUES (%s, %s)
           ON CONFLICT DO NOTHING""",
        (consumer, message_id),
    )
    return cur.rowcount == 1


async def forget_before(conn: Conn, older_than: timedelta, *, limit: int) -> int:
    """Drop up to ``limit`` markers older than any redelivery can be (keep this well above the bus
    retention: a marker that goes while its message can still come back lets the work happen twice)."""
    cur = await conn.execute(
        """DELETE FROM control.processed_messages
            WHERE (consumer, message_id) IN (SELECT consumer, message_id FROM control.processed_messages
                                              WHERE processed_at < now() - %s
                                              ORDER BY processed_at LIMIT %s)""",
        (older_than, limit),
    )
    return cur.rowcount
