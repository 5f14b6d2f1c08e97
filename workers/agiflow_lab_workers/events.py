"""A running job's events, sent back to the backend as ``job-events`` messages.

The messages are the typed ones of ``agiflow_lab.jobs.events``, recorded with its ``record_event``:
through the transactional outbox (not straight to the broker), so a broker outage delays them instead
of losing them, with the same retries as every other sender. Log output is batched for a short interval: a notebook printing in a
tight loop becomes a few messages a second, not thousands, while a person watching still sees lines
as they happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from agiflow_lab.db.database import Database
from agiflow_lab.jobs.events import (
    CellProgress,
    Finished,
    FinishedEvent,
    LogEvent,
    LogOutput,
    ProgressEvent,
    record_event,
)
from agiflow_lab_workers.runner import Stream

LOG_BATCH_SECONDS = 0.1
PROGRESS_EVERY_SECONDS = 0.25  # a notebook of many quick cells reports a few times a second, and its end
MAX_LOG_CHARS = 64_000


class JobEventSender:
    def __init__(self, db: Database, job_id: str, attempt: int, worker_id: str) -> None:
        self.db = db
        self.job_id = job_id
        self.attempt = attempt
        self.worker_id = worker_id
        self._pending: list[tuple[Stream, str]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._progress_sent_at = 0.0
        self._unsent_progress: tuple[int, int] | None = None

    async def finished(self, outcome: Finished) -> None:
        await record_event(self.db, FinishedEvent(**self._sender(), data=outcome))

    def _sender(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "attempt": self.attempt, "worker_id": self.worker_id}

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
        await record_event(
            self.db, ProgressEvent(**self._sender(), data=CellProgress(done=cells_done, total=cells_total))
        )

    async def on_log(self, stream: Stream, text: str) -> None:
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
            merged: list[tuple[Stream, str]] = []
            for stream, text in pending:
                if merged and merged[-1][0] == stream:
                    merged[-1] = (stream, merged[-1][1] + text)
                else:
                    merged.append((stream, text))
            for stream, text in merged:
                if len(text) > MAX_LOG_CHARS:
                    text = text[:MAX_LOG_CHARS] + f"\n… ({len(text) - MAX_LOG_CHARS} characters cut)\n"
                await record_event(self.db, LogEvent(**self._sender(), data=LogOutput(stream=stream, text=text)))

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
        if self._unsent_progress is not None:  # a run that stopped early: report how far it got
            await self._send_progress(*self._unsent_progress, time.monotonic())
