"""A small per-worker cache whose entries expire after a bound given at each lookup (docs/decisions.md lists
what is cached and for how long). Entries are timed from before the read that produced them, so a change
committed at time T is seen by every lookup after T + bound. Bounded in size: when full it starts over."""

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}

    @staticmethod
    def clock() -> float:
        """When a read starts; pass it to `put` with the value that read returned."""
        return time.monotonic()

    def get(self, key: K, max_age_seconds: float) -> V | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if time.monotonic() - hit[0] >= max_age_seconds:
            self._entries.pop(key, None)  # another thread may have dropped it meanwhile
            return None
        return hit[1]

    def put(self, key: K, value: V, read_at: float, max_age_seconds: float) -> None:
        if max_age_seconds <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (read_at, value)

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
