"""Fixed-window rate limits, shared through Redis when configured, in-process otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int]:
        """Count one request; (allowed, seconds until the window resets)."""
        ...


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int]:
        now = self._clock()
        window = int(now // window_seconds)
        retry_after = int((window + 1) * window_seconds - now) + 1
        with self._lock:
            if len(self._counts) > self._max_keys:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            current_window, count = self._counts.get(key, (window, 0))
            if current_window != window:
                count = 0
            count += 1
            self._counts[key] = (window, count)
        return count <= limit, retry_after


class RedisRateLimiter:
    """One INCR + EXPIRE per request; falls back to a local limiter while Redis is down."""

    def __init__(
        self,
        client: Any,
        fallback: RateLimiter,
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._fallback = fallback
        self._prefix = prefix
        self._clock = clock

    def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int]:
        now = self._clock()
        window = int(now // window_seconds)
        redis_key = f"{self._prefix}rl:{key}:{window}"
        try:
            pipe = self._client.pipeline()
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_seconds + 1)
            count = int(pipe.execute()[0])
        except Exception:  # Redis down: limits stay enforced per process
            return self._fallback.hit(key, limit, window_seconds)
        return count <= limit, int((window + 1) * window_seconds - now) + 1
