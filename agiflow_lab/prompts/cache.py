"""Resolved prompt versions cached in each server process.

Fetching a prompt by label is the hottest path of the platform (every LLM call of every app), and
most of its cost is the database round trip and model validation, not the rule. Entries are dropped
when the prompt changes: every write NOTIFYs ``agiflow_prompts`` in its transaction and every
process LISTENs. A per-prompt generation number stops a read that raced a write from storing what
it read after the write's invalidation; a short TTL bounds the damage of a notification missed while
the listener reconnects (it also clears everything when it reconnects).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from agiflow_lab.db.database import Conn, Database
from agiflow_lab.db.listen import ListenConn, Listener
from agiflow_lab.prompts.models import PromptVersion

log = logging.getLogger(__name__)

CHANNEL = "agiflow_prompts"
PromptKey = tuple[int, str]  # (project id, prompt name)
EntryKey = tuple[int, str, str | None, int | None]  # + (label, version)


class PromptCache:
    def __init__(self, db: Database, ttl: float = 60.0, max_entries: int = 50_000) -> None:
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[EntryKey, tuple[float, PromptVersion]] = {}
        self._by_prompt: defaultdict[PromptKey, set[EntryKey]] = defaultdict(set)
        self._generation: defaultdict[PromptKey, int] = defaultdict(int)
        self.listening = False
        self._listener = Listener(db, CHANNEL, on_connect=self._resync, on_notify=self._changed, on_lost=self._paused,
                                  name="prompt cache")  # fmt: skip

    def generation(self, prompt: PromptKey) -> int:
        return self._generation[prompt]

    def get(self, key: EntryKey) -> PromptVersion | None:
        if not self.listening:
            return None  # without invalidations a cached answer could be stale for a whole TTL
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: EntryKey, generation: int, value: PromptVersion) -> None:
        prompt = (key[0], key[1])
        if not self.listening or self._generation[prompt] != generation:
            return
        if len(self._entries) >= self.max_entries:
            self.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)
        self._by_prompt[prompt].add(key)

    def invalidate(self, prompt: PromptKey) -> None:
        self._generation[prompt] += 1
        for key in self._by_prompt.pop(prompt, ()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        for prompt in list(self._by_prompt):
            self.invalidate(prompt)
        self._entries.clear()

    @staticmethod
    async def announce(conn: Conn, prompt: PromptKey) -> None:
        """Call inside the writing transaction: every process drops the prompt when it commits."""
        await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{prompt[0]}:{prompt[1]}"))

    def start(self) -> None:
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def _resync(self, _conn: ListenConn) -> None:
        self.clear()  # whatever changed while nobody listened
        self.listening = True

    def _paused(self) -> None:
        self.listening = False
        self.clear()

    async def _changed(self, payload: str) -> None:
        project_id, _, name = payload.partition(":")
        if not project_id.isdigit():  # something changed, but we cannot tell what: drop everything
            log.warning("malformed prompt invalidation %r; clearing the cache", payload)
            self.clear()
            return
        self.invalidate((int(project_id), name))
