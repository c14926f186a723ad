"""Fixed-window rate limits, shared through Redis when configured, in-process otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int]:
        """Count one request; (allowed, seconds until the window resets)."""
        ...

    def peek(self, key: str, window_seconds: int) -> int:
        """Hits counted so far in the current window, without counting one."""
        ...

    def reset_in(self, window_seconds: int) -> int:
        """Seconds until the current window ends, by the limiter's own clock."""
        ...


def seconds_left(now: float, window_seconds: int) -> int:
    """Until the fixed window that holds ``now`` ends, rounded up (a Retry-After)."""
    return int((int(now // window_seconds) + 1) * window_seconds - now) + 1


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def hit(self, key: str, limit: int, window_seconds: int) -> tuple[bool, int]:
        now = self._clock()
        window = int(now // window_seconds)
        retry_after = seconds_left(now, window_seconds)
        with self._lock:
            if len(self._counts) > self._max_keys:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            current_window, count = self._counts.get(key, (window, 0))
            if current_window != window:
                count = 0
            count += 1
            self._counts[key] = (window, count)
        return count <= limit, retry_after

    def peek(self, key: str, window_seconds: int) -> int:
        window = int(self._clock() // window_seconds)
        with self._lock:
            current_window, count = self._counts.get(key, (window, 0))
        return count if current_window == window else 0

    def reset_in(self, window_seconds: int) -> int:
        return seconds_left(self._clock(), window_seconds)


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
        retry_after = seconds_left(now, window_seconds)
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

    def peek(self, key: str, window_seconds: int) -> int:
        """Hits taken in Redis (leased ones included: exact for the small limits peeked at)."""
        now = self._clock()
        if now < self._down_until:
            return self._fallback.peek(key, window_seconds)
        window = int(now // window_seconds)
        try:
            value = self._client.get(f"{self._prefix}rl:{key}:{window}")
        except Exception:
            self._down_until = now + self._retry_after
            return self._fallback.peek(key, window_seconds)
        return int(value or 0)

    def reset_in(self, window_seconds: int) -> int:
        return seconds_left(self._clock(), window_seconds)


# --- which buckets a request counts against ----------------------------------------------

WINDOW_SECONDS = 60
# The most one API key may be given: far beyond any one shop, and within a 32-bit column.
MAX_KEY_PER_MINUTE = 1_000_000
# Wrong passwords for one username from one address: the allowance per window grows slower
# than the window, so a guesser is slowed down more and more (1 minute, 15 minutes, a day).
LOGIN_BACKOFF = ((60, 1), (900, 3), (86_400, 10))  # (window, multiple of the per-minute limit)


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    limit: int
    window: int = WINDOW_SECONDS


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: int
    window: int
    retry_after: int

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("Retry-After", str(self.retry_after)),
            ("RateLimit-Limit", str(self.limit)),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", str(self.retry_after)),
            ("RateLimit-Policy", f"{self.limit};w={self.window}"),
        ]


def take(limiter: RateLimiter, buckets: list[Bucket]) -> Refusal | None:
    """Count the request in every bucket; the first one over its limit refuses it."""
    for bucket in buckets:
        allowed, retry_after = limiter.hit(bucket.key, bucket.limit, bucket.window)
        if not allowed:
            return Refusal(bucket.limit, bucket.window, retry_after)
    return None


def login_locked(limiter: RateLimiter, who: str, per_minute: int) -> Refusal | None:
    """Refuse a login for ``who`` (address and username) while it has failed too often."""
    for window, multiple in LOGIN_BACKOFF:
        limit = per_minute * multiple
        if limiter.peek(f"loginfail:{window}:{who}", window) >= limit:
            # The limiter's clock, which counted the failures (it was the wall clock here: a
            # test's clock at 1,000,180 s got a Retry-After from the real time of day).
            return Refusal(limit, window, limiter.reset_in(window))
    return None


def login_failed(limiter: RateLimiter, who: str, per_minute: int) -> None:
    for window, multiple in LOGIN_BACKOFF:
        limiter.hit(f"loginfail:{window}:{who}", per_minute * multiple, window)
