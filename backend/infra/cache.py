"""The cache seam: recommendations and explanations, always disposable.

Entries are grouped per user under one key (``rec:recommendations:{user_id}``) with one field
per variant (strategy, top_n…), so invalidating a user is a single delete. ``MemoryCache``
is the embedded default; a Redis adapter implements the same protocol.

A delete also moves the key's *version* on. A caller that computes an entry reads the version
before it reads the data the entry is made of, and stores with ``set_if_version``: if the key
was invalidated in between (an event arrived while the list was computed), the possibly stale
entry is not stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from backend.security.rate_limit import RateLimiter, RedisRateLimiter

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CacheStatus:
    backend: str
    status: str  # "ok" | "degraded"
    detail: str = ""


class Cache(Protocol):
    def get(self, key: str, field: str) -> str | None: ...

    def set(self, key: str, field: str, value: str, ttl_seconds: int) -> None: ...

    def version(self, key: str) -> str | None:
        """The key's invalidation version; None when the cache cannot guard a write now."""
        ...

    def set_if_version(
        self, key: str, field: str, value: str, ttl_seconds: int, version: str
    ) -> bool:
        """Store unless the key was invalidated since ``version`` was read."""
        ...

    def delete(self, *keys: str) -> None:
        """Drop every field of the keys and move their versions on (in one round trip)."""
        ...

    def status(self) -> CacheStatus: ...


def recommendations_key(user_id: object) -> str:
    return f"rec:recommendations:{user_id}"


def explanations_key(user_id: object) -> str:
    """LLM explanations of a user's lists; delete it with the user's other keys."""
    return f"rec:explanations:{user_id}"


def user_cache_keys(user_id: object) -> tuple[str, ...]:
    """Every per-user key: an event makes all of them stale (explanations follow the same
    one-key-per-user, one-field-per-variant layout as recommendations)."""
    return (recommendations_key(user_id), explanations_key(user_id))


def invalidate_user(cache: Cache, *user_ids: object) -> None:
    cache.delete(*(key for user_id in user_ids for key in user_cache_keys(user_id)))


class MemoryCache:
    """A bounded in-process TTL cache (least recently used keys are evicted first)."""

    def __init__(self, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # Versions: one counter for all keys; each key remembers the count at its last
        # delete. Forgotten keys (bounded memory) count as deleted at the newest forgotten.
        self._deletes = 0
        self._deleted_at: OrderedDict[str, int] = OrderedDict()
        self._forgotten = 0

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
            self._set(key, field, value, ttl_seconds)

    def version(self, key: str) -> str | None:
        with self._lock:
            return str(self._deletes)

    def set_if_version(
        self, key: str, field: str, value: str, ttl_seconds: int, version: str
    ) -> bool:
        if ttl_seconds <= 0:
            return False
        with self._lock:
            if self._deleted_at.get(key, self._forgotten) > int(version):
                return False
            self._set(key, field, value, ttl_seconds)
            return True

    def _set(self, key: str, field: str, value: str, ttl_seconds: int) -> None:
        """The caller holds the lock."""
        expires = self._now() + ttl_seconds
        entry = self._data.get(key)
        fields = entry[1] if entry and entry[0] > self._now() else {}
        fields[field] = value
        self._data[key] = (expires, fields)
        self._data.move_to_end(key)
        while len(self._data) > self._max_keys:
            self._data.popitem(last=False)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)
                self._deletes += 1
                self._deleted_at[key] = self._deletes
                self._deleted_at.move_to_end(key)
                while len(self._deleted_at) > self._max_keys:
                    self._forgotten = self._deleted_at.popitem(last=False)[1]

    def status(self) -> CacheStatus:
        return CacheStatus(backend="memory", status="ok", detail=f"{len(self._data)} keys")


# Store a field unless the key's version moved on since the caller read it (atomic in Redis).
_SET_IF_VERSION = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
EPOCH_SUFFIX = ":epoch"
# A version must outlive any computation guarded by it; it is one small key per user.
EPOCH_TTL_SECONDS = 86_400


class RedisCache:
    """Redis behind the ``Cache`` protocol, shared by every API replica.

    Redis trouble never reaches a caller: reads miss, writes are dropped and the outage is
    logged once and shown by ``status()``. Calls stop for a short, growing backoff, then the
    next call probes Redis again. Invalidations made during an outage are kept and replayed
    before anything is read after recovery, so no stale list outlives the outage.

    A key's version is a counter beside it (``{key}:epoch``), moved on by every delete.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = "",
        retry_after_seconds: float = 1.0,
        max_retry_after_seconds: float = 15.0,
        max_pending_deletes: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._retry_after = retry_after_seconds
        self._max_retry_after = max_retry_after_seconds
        self._max_pending = max_pending_deletes
        self._clock = clock
        self._lock = threading.Lock()
        self._probe = threading.Lock()
        self._failures = 0
        self._down_until = 0.0
        self._down_since: float | None = None
        self._last_error = ""
        self._pending: set[str] = set()
        self._dropped_deletes = 0
        self._set_if_version = client.register_script(_SET_IF_VERSION)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "",
        timeout_seconds: float = 0.5,
        retry_after_seconds: float = 1.0,
    ) -> RedisCache:
        """Short timeouts and no client-side retries: a slow Redis must not slow requests."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        return cls(client, namespace=namespace, retry_after_seconds=retry_after_seconds)

    # -- the protocol ---------------------------------------------------------------------

    def get(self, key: str, field: str) -> str | None:
        if not self._available():
            return None
        try:
            value = self._client.hget(self._namespace + key, field)
        except Exception as exc:  # any client error: degrade to a miss
            self._failed(exc)
            return None
        return cast("str | None", value)

    def set(self, key: str, field: str, value: str, ttl_seconds: int) -> None:
        if ttl_seconds <= 0 or not self._available():
            return
        name = self._namespace + key
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(name, field, value)
            pipe.expire(name, ttl_seconds)
            pipe.execute()
        except Exception as exc:
            self._failed(exc)

    def version(self, key: str) -> str | None:
        if not self._available():
            return None
        try:
            value = self._client.get(self._namespace + key + EPOCH_SUFFIX)
        except Exception as exc:
            self._failed(exc)
            return None
        return cast("str | None", value) or "0"

    def set_if_version(
        self, key: str, field: str, value: str, ttl_seconds: int, version: str
    ) -> bool:
        if ttl_seconds <= 0 or not self._available():
            return False
        name = self._namespace + key
        try:
            stored = self._set_if_version(
                keys=[name, name + EPOCH_SUFFIX], args=[version, field, value, ttl_seconds]
            )
        except Exception as exc:
            self._failed(exc)
            return False
        return bool(stored)

    def delete(self, *keys: str) -> None:
        names = [self._namespace + key for key in keys]
        if self._available():
            try:
                self._invalidate(names)
                return
            except Exception as exc:
                self._failed(exc)
        for name in names:
            self._remember_delete(name)

    def _invalidate(self, names: list[str]) -> None:
        """Delete the keys and move their versions on, in one round trip."""
        pipe = self._client.pipeline(transaction=True)
        for name in names:
            pipe.unlink(name)
            pipe.incr(name + EPOCH_SUFFIX)
            pipe.expire(name + EPOCH_SUFFIX, EPOCH_TTL_SECONDS)
        pipe.execute()

    def status(self) -> CacheStatus:
        if self._available():
            try:
                started = time.perf_counter()
                self._client.ping()
                elapsed = (time.perf_counter() - started) * 1000
                return CacheStatus(backend="redis", status="ok", detail=f"ping {elapsed:.1f} ms")
            except Exception as exc:
                self._failed(exc)
        with self._lock:
            wait = max(self._down_until - self._clock(), 0.0)
            detail = (
                f"unreachable ({self._last_error}); serving without cache, "
                f"retrying in {wait:.1f} s; {len(self._pending)} invalidation(s) pending"
            )
        return CacheStatus(backend="redis", status="degraded", detail=detail)

    def rate_limiter(self, fallback: RateLimiter) -> RateLimiter:
        """Rate limits shared by every API process, on this cache's connection."""
        return RedisRateLimiter(self._client, fallback, prefix=self._namespace)

    # -- outage handling --------------------------------------------------------------------

    def _available(self) -> bool:
        if self._failures == 0:
            return True
        if self._clock() < self._down_until:
            return False
        if not self._probe.acquire(blocking=False):
            return False  # another thread is probing; this call goes without cache
        try:
            return self._recover()
        finally:
            self._probe.release()

    def _recover(self) -> bool:
        with self._lock:
            pending = list(self._pending)
        try:
            self._client.ping()
            if self._dropped_deletes:  # too many to remember: every cached entry is suspect
                found = self._client.scan_iter(match=self._namespace + "rec:*")
                pending = list(dict.fromkeys(str(n).removesuffix(EPOCH_SUFFIX) for n in found))
            for start in range(0, len(pending), 500):
                self._invalidate(pending[start : start + 500])
        except Exception as exc:
            self._failed(exc)
            return False
        with self._lock:
            self._pending.difference_update(pending)
            outage = self._clock() - (self._down_since or self._clock())
            self._failures, self._down_until, self._down_since = 0, 0.0, None
            self._dropped_deletes = 0
        log.warning(
            "Redis cache is back after %.1f s; replayed %d invalidation(s)", outage, len(pending)
        )
        return True

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._failures == 0
            self._failures += 1
            backoff = min(self._retry_after * 2 ** (self._failures - 1), self._max_retry_after)
            self._down_until = self._clock() + backoff
            self._last_error = type(exc).__name__
            if first:
                self._down_since = self._clock()
        if first:
            log.warning(
                "Redis cache unavailable (%s: %s); serving without cache",
                exc.__class__.__name__,
                exc,
            )

    def _remember_delete(self, name: str) -> None:
        with self._lock:
            if len(self._pending) < self._max_pending:
                self._pending.add(name)
            else:
                self._dropped_deletes += 1
                if self._dropped_deletes == 1:
                    log.error("too many invalidations pending; the cache is cleared on recovery")
