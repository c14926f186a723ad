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
    """Fixed windows shared through Redis, taken in small leases.

    A process reserves ``lease`` hits of a key's window with one INCRBY and spends them
    locally, so Redis sees one round trip per lease instead of one per request (the call
    runs on the event loop). Together the processes never allow more than the limit; leases
    other processes have not spent yet can close a window up to (processes - 1) x lease hits
    early, so a lease is a small share of the limit (1/50, at most 100; small limits stay
    exact). While Redis is unreachable, limits are enforced per process and Redis is tried
    again after ``retry_after_seconds``, not on every request.
    """

    def __init__(
        self,
        client: Any,
        fallback: RateLimiter,
        *,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
        lease_share: int = 50,
        max_lease: int = 100,
        retry_after_seconds: float = 1.0,
        max_keys: int = 100_000,
    ) -> None:
        self._client = client
        self._fallback = fallback
        self._prefix = prefix
        self._clock = clock
        self._lease_share = max(lease_share, 1)
        self._max_lease = max(max_lease, 1)
        self._retry_after = retry_after_seconds
        self._max_keys = max_keys
        self._leases: dict[str, tuple[int, int]] = {}  # key -> (window, hits left)
        self._lock = threading.Lock()
        self._down_until = 0.0

    def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int]:
        now = self._clock()
        window = int(now // window_seconds)
        retry_after = int((window + 1) * window_seconds - now) + 1
        with self._lock:
            leased_window, left = self._leases.get(key, (window, 0))
            if leased_window == window and left != 0:
                if left < 0:  # this window is used up everywhere: no need to ask Redis
                    return False, retry_after
                self._leases[key] = (window, left - 1)
                return True, retry_after
        if now < self._down_until:
            return self._fallback.hit(key, limit, window_seconds)
        lease = max(1, min(limit // self._lease_share, self._max_lease))
        redis_key = f"{self._prefix}rl:{key}:{window}"
        try:
            pipe = self._client.pipeline()
            pipe.incrby(redis_key, lease)
            pipe.expire(redis_key, window_seconds + 1)
            count = int(pipe.execute()[0])
        except Exception:  # Redis down: limits stay enforced per process
            self._down_until = now + self._retry_after
            return self._fallback.hit(key, limit, window_seconds)
        granted = min(lease, limit - (count - lease))  # the part of this lease within the limit
        with self._lock:
            if len(self._leases) >= self._max_keys:
                self._leases = {k: v for k, v in self._leases.items() if v[0] == window}
            self._leases[key] = (window, granted - 1 if granted > 0 else -1)
        return granted > 0, retry_after
