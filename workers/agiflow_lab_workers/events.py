"""A running job's events, sent back to the backend as ``job-events`` messages.

They go through the transactional outbox (not straight to the broker) so a broker outage delays
them instead of losing them. Log output is batched for a short interval: a notebook printing in a
tight loop becomes a few messages a second, not thousands, while a person watching still sees lines
as they happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from agiflow_lab.bus import outbox
from agiflow_lab.bus.topics import JOB_EVENTS
from agiflow_lab.db.database import Database

log = logging.getLogger(__name__)

LOG_BATCH_SECONDS = 0.1
PROGRESS_EVERY_SECONDS = 0.25  # a notebook of many quick cells reports a few times a second, and its end
MAX_LOG_CHARS = 64_000


class JobEventSender:
    def __init__(self, db: Database, job_id: str, attempt: int, worker_id: str) -> None:
        self.db = db
        self.job_id = job_id
        self.attempt = attempt
        self.worker_id = worker_id
        self._pending: list[tuple[str, str]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._progress_sent_at = 0.0
        self._unsent_progress: tuple[int, int] | None = None

    async def send(self, kind: str, data: dict[str, Any]) -> None:
        payload = {"job_id": self.job_id, "attempt": self.attempt, "worker_id": self.worker_id, "type": kind,
                   "data": data}  # fmt: skip
        for delay in (0.2, 0.5, 1, 2, 5, 10, 0):
            try:
                async with self.db.transaction() as conn:
                    await outbox.enqueue(conn, JOB_EVENTS, self.job_id, payload)
                return
            except Exception:
                if not delay:
                    raise
                log.warning("cannot record %s event of job %s; retrying", kind, self.job_id, exc_info=True)
                await asyncio.sleep(delay)

    # RunEvents protocol -------------------------------------------------------------------------

    async def on_progress(self, cells_done: int, cells_total: int) -> None:
        now = time.monotonic()
        if cells_done < cells_total and now - self._progress_sent_at < PROGRESS_EVERY_SECONDS:
            self._unsent_progress = (cells_done, cells_total)
            return
        await self._send_progress(cells_done, cells_total, now)

    async def _send_progress(self, cells_done: int, cells_total: int, now: float) -> None:
        await self.flush()  # log lines before the progress they led up to
        self._unsent_progress = None
        self._progress_sent_at = now
        await self.send("progress", {"done": cells_done, "total": cells_total})

    async def on_log(self, stream: str, text: str) -> None:
        self._pending.append((stream, text))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(LOG_BATCH_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            merged: list[tuple[str, str]] = []
            for stream, text in pending:
                if merged and merged[-1][0] == stream:
                    merged[-1] = (stream, merged[-1][1] + text)
                else:
                    merged.append((stream, text))
            for stream, text in merged:
                if len(text) > MAX_LOG_CHARS:
                    text = text[:MAX_LOG_CHARS] + f"\n… ({len(text) - MAX_LOG_CHARS} characters cut)\n"
                await self.send("log", {"stream": stream, "text": text})

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        if self._unsent_progress is not None:  # a run that stopped early: report how far it got
            await self._send_progress(*self._unsent_progress, time.monotonic())
