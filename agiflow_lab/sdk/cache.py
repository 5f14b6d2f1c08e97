"""The SDK's prompt cache: a TTL, stale-if-error, and read-your-writes per prompt.

- A fresh entry (younger than ``ttl``) is served without a request.
- An expired entry is refetched; if that fails transiently (server unreachable, 5xx) the old value is
  served and a ``StaleCacheWarning`` is issued once per entry until a refresh succeeds again.
- Read-your-writes: every write this client makes to a prompt bumps that prompt's *epoch* and drops
  its entries. An entry is only served (fresh or stale) if it was fetched in the current epoch, so a
  response to a request that started before the write can never be served after it — whichever
  way the write moved things (a new version, or a label moved back to an older one).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from agiflow_lab.sdk.errors import ApiError

V = TypeVar("V")


class StaleCacheWarning(UserWarning):
    """A cached value was served because refreshing it failed."""


@dataclass(frozen=True)
class Entry(Generic[V]):
    value: V
    expires: float
    epoch: int


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stale: int = 0


class PromptCache(Generic[V]):
    """Entries are grouped by prompt (``group``) and keyed within it by selector (label or version)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0:
            raise ValueError("cache_ttl must be >= 0")
        self.ttl = ttl
        self.clock = clock
        self.stats = CacheStats()
        self._entries: dict[Hashable, dict[Hashable, Entry[V]]] = {}
        self._epochs: dict[Hashable, int] = {}
        self._warned: set[tuple[Hashable, Hashable]] = set()
        self._lock = threading.Lock()

    def get(self, group: Hashable, key: Hashable, fetch: Callable[[], V]) -> V:
        epoch = self._epochs.get(group, 0)
        entry = self._entries.get(group, {}).get(key)
        if entry is not None and entry.epoch != epoch:
            entry = None
        if entry is not None and entry.expires > self.clock():
            self.stats.hits += 1
            return entry.value
        self.stats.misses += 1
        try:
            return self.refresh(group, key, fetch)
        except ApiError as exc:
            if entry is None or not exc.transient or entry.epoch != self._epochs.get(group, 0):
                raise  # nothing to fall back on, a real answer (404, 403...), or this client wrote since
            self.stats.stale += 1
            self._warn_once(group, key, exc)
            return entry.value

    def refresh(self, group: Hashable, key: Hashable, fetch: Callable[[], V]) -> V:
        """Fetch now (never serving a cached copy) and keep the answer unless a write overtook it."""
        epoch = self._epochs.get(group, 0)
        value = fetch()
        self._warned.discard((group, key))
        self.put(group, key, value, epoch)
        return value

    def put(self, group: Hashable, key: Hashable, value: V, epoch: int | None = None) -> None:
        """Store ``value`` if no write to ``group`` happened since ``epoch`` (default: now)."""
        with self._lock:
            current = self._epochs.get(group, 0)
            if epoch is not None and epoch != current:
                return  # fetched before this client wrote the prompt: never serve it
            self._entries.setdefault(group, {})[key] = Entry(value, self.clock() + self.ttl, current)

    def wrote(self, group: Hashable) -> None:
        """This client changed the prompt: forget it, and refuse answers to requests sent before now."""
        with self._lock:
            self._epochs[group] = self._epochs.get(group, 0) + 1
            self._entries.pop(group, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._warned.clear()

    def _warn_once(self, group: Hashable, key: Hashable, exc: ApiError) -> None:
        if (group, key) in self._warned:
            return
        self._warned.add((group, key))
        warnings.warn(
            StaleCacheWarning(f"serving cached {group}/{key}: refreshing it failed: {exc}"),
            stacklevel=4,
        )
