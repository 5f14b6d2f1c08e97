"""Shutdown steps that end on time, whatever the thing being closed is doing.

A process must stop within seconds of SIGTERM in every state of the services it talks to. Client
libraries do not promise that: aiokafka's ``stop()`` waits for a group coordinator it cannot reach and
lets a ``CancelledError`` of its own heartbeat task escape, and a pool waiting for a dead database
holds a connection request for its full timeout. ``finish_within`` runs one step as a task of its own
and waits a bounded time: a step that overruns is cancelled and left behind, a step that fails (or is
cancelled from inside) is logged, and only a cancel of the *caller* propagates. So one stuck step
costs its own budget, never the rest of the shutdown, and never turns into a hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger(__name__)


async def finish_within(seconds: float, step: Awaitable[object], what: str) -> bool:
    """Await ``step`` for at most ``seconds``; True if it completed without an error."""
    task = asyncio.ensure_future(step)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:  # our caller is cancelled: so is the step
        task.cancel()
        raise
    if not done:
        task.cancel()
        log.warning("%s did not finish within %.0f s; left behind", what, seconds)
        return False
    if task.cancelled():
        log.warning("%s was cancelled from inside while closing", what)
        return False
    error = task.exception()
    if error is not None:
        log.warning("%s failed while closing: %s: %s", what, type(error).__name__, error)
        return False
    return True
