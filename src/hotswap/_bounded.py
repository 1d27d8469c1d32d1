"""Caches bounded by the bytes of what they keep, not only by count: a session edits for hours,
and one module may hold megabytes of text (a 5 MB module edited 80 times once kept 590 MiB
alive through caches counted in entries)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["MIB", "SizedCache"]

MIB = 1 << 20
K = TypeVar("K")
V = TypeVar("V")


class SizedCache(Generic[K, V]):
    """The least recently used entries go first, once the sizes given add up to more than
    ``max_bytes`` or there are more than ``max_items``; the entry just put always stays (the text
    that runs now is the old text of the next reload, however big). Thread-safe: the warm-up
    thread fills some."""

    def __init__(self, max_bytes: int, max_items: int) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V, size: int) -> V:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while len(self._entries) > 1 and (self._bytes > self.max_bytes or len(self._entries) > self.max_items):
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The bytes the entries stand for, as their sizes were given."""
        return self._bytes
