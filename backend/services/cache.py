"""The cache seam: recommendations and explanations, always disposable.

Entries are grouped per user under one key (``rec:recommendations:{user_id}``) with one field
per variant (strategy, top_n…), so invalidating a user is a single delete. ``MemoryCache``
is the embedded default; a Redis adapter implements the same protocol.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CacheStatus:
    backend: str
    status: str  # "ok" | "degraded"
    detail: str = ""


class Cache(Protocol):
    def get(self, key: str, field: str) -> str | None: ...

    def set(self, key: str, field: str, value: str, ttl_seconds: int) -> None: ...

    def delete(self, key: str) -> None: ...

    def status(self) -> CacheStatus: ...


def recommendations_key(user_id: object) -> str:
    return f"rec:recommendations:{user_id}"


class MemoryCache:
    """A bounded in-process TTL cache (least recently used keys are evicted first)."""

    def __init__(self, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self._clock()

    def get(self, key: str, field: str) -> str | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            expires, fields = entry
            if expires <= self._now():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return fields.get(field)

    def set(self, key: str, field: str, value: str, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            return
        with self._lock:
            expires = self._now() + ttl_seconds
            entry = self._data.get(key)
            fields = entry[1] if entry and entry[0] > self._now() else {}
            fields[field] = value
            self._data[key] = (expires, fields)
            self._data.move_to_end(key)
            while len(self._data) > self._max_keys:
                self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def status(self) -> CacheStatus:
        return CacheStatus(backend="memory", status="ok", detail=f"{len(self._data)} keys")
