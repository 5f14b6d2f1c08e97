"""Reading job events in id order without ever passing an id that may still appear.

An event's id comes from a sequence when its row is inserted, but the row becomes visible when its
transaction commits, and transactions commit in any order: a worker's claim (which records
``running``) can insert id 33 and commit after a submission that inserted id 34. A reader that takes
"everything after the last id I saw" reads 34, moves its mark to 34, and never sees 33: the event is
not in the table yet when it looks, and below its mark when it is. That is how a WebSocket follower
lost a job's ``running`` event (bench/jobs.py, 10 jobs at once: a TimeoutError) and how
tests/test_event_order.py lost 5 events in 30 jobs.

``EventCursor`` hands out rows only up to the first missing id (a *gap*). Most gaps close by
themselves: the missing row commits (and NOTIFYs) moments later. Some never do: the transaction rolled
back, or the insert was a duplicate bus message (``ON CONFLICT DO NOTHING`` still spends a sequence
value). A gap is given up once every transaction that could still hold it has ended, which Postgres
can tell: the gap is seen, then a snapshot's ``xmax`` is noted (one check later, so the inserting
statement has surely been given its transaction id), and once a snapshot's ``xmin`` has passed that
point, any such transaction has committed or rolled back; one more read settles which. If a long
transaction elsewhere keeps ``xmin`` back, the gap is given up after ``grace`` seconds instead, with a
warning (the row, if it ever commits, is still in the table for anyone reading it from there).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from agiflow_lab.db.database import Conn, Database
from agiflow_lab.jobs import store

log = logging.getLogger(__name__)

GAP_GRACE = 10.0  # longest a missing id holds the events behind it when a long transaction hides the answer


@dataclass
class _Gap:
    first: int  # the first missing id
    seen_at: float
    horizon: int | None = None  # xmax of a snapshot taken after the gap was seen
    closed: bool = False  # no transaction that could fill it is running any more


class EventCursor:
    """Rows of ``control.job_events`` in id order, each exactly once, none skipped while it may appear."""

    def __init__(self, db: Database, through: int = 0, *, grace: float = GAP_GRACE) -> None:
        self.db = db
        self.through = through  # every id up to here was handed out, or is known never to appear
        self.grace = grace
        self.more = False  # read again at once: a full page, or a gap just closed
        self._gap: _Gap | None = None

    @property
    def waiting(self) -> bool:
        """A gap holds events back: read again soon, even without a notification."""
        return self._gap is not None

    async def read(self, limit: int = 1000) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        self.more = False
        async with self.db.connection() as conn:
            rows = await store.events_after(conn, self.through, limit=limit)
            expect = self.through + 1
            for row in rows:
                if row["id"] != expect:
                    gap = self._gap
                    if gap is None or gap.first != expect:
                        self._gap = _Gap(expect, time.monotonic())
                        break
                    if not gap.closed:
                        await self._check(conn, gap, row["id"])
                        self.more = gap.closed  # re-read: the rows may have committed just before the check
                        break
                    # Closed before this read began, and still missing: these ids will never be seen.
                self._gap = None
                out.append(row)
                expect = row["id"] + 1
            else:
                self.more = len(rows) == limit
        if out:
            self.through = out[-1]["id"]
        return out

    async def _check(self, conn: Conn, gap: _Gap, next_id: int) -> None:
        xmin, xmax = await store.xid_horizon(conn)
        if gap.horizon is None:
            gap.horizon = xmax
        elif xmin >= gap.horizon:
            gap.closed = True
        if not gap.closed and time.monotonic() - gap.seen_at > self.grace:
            gap.closed = True
            log.warning("job event ids %d-%d still invisible after %.0f s (a long transaction?); going on without "
                        "them", gap.first, next_id - 1, self.grace)  # fmt: skip
