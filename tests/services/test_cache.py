"""The cache seam: the in-process TTL cache, and Redis with its degrade-and-recover rules."""

from __future__ import annotations

import pytest
import redis

from backend.services.cache import (
    MemoryCache,
    RedisCache,
    invalidate_user,
    recommendations_key,
    user_cache_keys,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyRedis:
    """Just enough of a redis client, with a switch that makes every call fail."""

    def __init__(self) -> None:
        self.down = False
        self.data: dict[str, dict[str, str]] = {}
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("Connection refused")

    def hget(self, key: str, field: str) -> str | None:
        self._check()
        return self.data.get(key, {}).get(field)

    def pipeline(self, transaction: bool = True) -> FlakyPipeline:
        return FlakyPipeline(self)

    def unlink(self, *keys: str) -> int:
        self._check()
        return sum(self.data.pop(k, None) is not None for k in keys)

    def ping(self) -> bool:
        self._check()
        return True

    def scan_iter(self, match: str) -> list[str]:
        self._check()
        return [k for k in self.data if k.startswith(match.rstrip("*"))]


class FlakyPipeline:
    def __init__(self, client: FlakyRedis) -> None:
        self.client = client
        self.ops: list[tuple[str, str, str]] = []

    def hset(self, key: str, field: str, value: str) -> None:
        self.ops.append((key, field, value))

    def expire(self, key: str, ttl: int) -> None:
        pass

    def execute(self) -> None:
        self.client._check()
        for key, field, value in self.ops:
            self.client.data.setdefault(key, {})[field] = value


def test_memory_cache_expires_and_invalidates_per_user():
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    for key in user_cache_keys("u1"):
        cache.set(key, "weighted:5", "v", ttl_seconds=60)
    assert cache.get(recommendations_key("u1"), "weighted:5") == "v"
    clock.now += 61
    assert cache.get(recommendations_key("u1"), "weighted:5") is None
    cache.set(recommendations_key("u1"), "weighted:5", "v", ttl_seconds=60)
    cache.set("rec:explanations:u1", "x", "e", ttl_seconds=60)
    invalidate_user(cache, "u1")
    assert cache.get(recommendations_key("u1"), "weighted:5") is None
    assert cache.get("rec:explanations:u1", "x") is None


def test_redis_outage_degrades_to_no_cache_then_recovers_with_a_backoff():
    fake, clock = FlakyRedis(), FakeClock()
    cache = RedisCache(fake, namespace="t:", retry_after_seconds=1.0, clock=clock)  # type: ignore[arg-type]
    cache.set("k", "f", "v", ttl_seconds=60)
    assert cache.get("k", "f") == "v" and cache.status().status == "ok"

    fake.down = True
    assert cache.get("k", "f") is None  # a miss, not an error
    status = cache.status()
    assert status.status == "degraded" and "ConnectionError" in status.detail
    calls = fake.calls
    cache.set("k", "f", "v2", ttl_seconds=60)  # dropped during the backoff, Redis not called
    assert cache.get("k", "f") is None and fake.calls == calls

    fake.down = False
    assert cache.get("k", "f") is None  # still backing off
    clock.now += 1.5
    assert cache.get("k", "f") == "v"  # probed, recovered
    assert cache.status().status == "ok"


def test_backoff_grows_while_redis_stays_down():
    fake, clock = FlakyRedis(), FakeClock()
    fake.down = True
    cache = RedisCache(fake, retry_after_seconds=1.0, clock=clock)  # type: ignore[arg-type]
    cache.get("k", "f")
    clock.now += 1.1
    cache.get("k", "f")  # probe fails: the next wait is 2 s
    calls = fake.calls
    clock.now += 1.5
    cache.get("k", "f")
    assert fake.calls == calls
    clock.now += 1.0
    cache.get("k", "f")
    assert fake.calls == calls + 1


def test_invalidations_made_during_an_outage_are_replayed_before_any_read():
    fake, clock = FlakyRedis(), FakeClock()
    cache = RedisCache(fake, retry_after_seconds=1.0, clock=clock)  # type: ignore[arg-type]
    cache.set(recommendations_key("u1"), "weighted:5", "stale", ttl_seconds=60)
    fake.down = True
    invalidate_user(cache, "u1")  # the user acted while Redis was unreachable
    assert "2 invalidation(s) pending" in cache.status().detail
    fake.down = False
    clock.now += 5
    assert cache.get(recommendations_key("u1"), "weighted:5") is None  # not the stale list
    assert cache.status().status == "ok"


def test_too_many_pending_invalidations_clear_the_whole_cache_on_recovery():
    fake, clock = FlakyRedis(), FakeClock()
    cache = RedisCache(fake, retry_after_seconds=1.0, max_pending_deletes=1, clock=clock)  # type: ignore[arg-type]
    for user in ("u1", "u2", "u3"):
        cache.set(recommendations_key(user), "f", "stale", ttl_seconds=60)
    fake.down = True
    for user in ("u1", "u2", "u3"):
        invalidate_user(cache, user)
    fake.down = False
    clock.now += 5
    for user in ("u1", "u2", "u3"):
        assert cache.get(recommendations_key(user), "f") is None


@pytest.mark.redis
def test_real_redis_ttl_namespace_and_delete(redis_url, redis_prefix):
    cache = RedisCache.from_url(redis_url, namespace=redis_prefix)
    key = recommendations_key("user-1")
    cache.set(key, "weighted:5", '{"a": 1}', ttl_seconds=3600)
    assert cache.get(key, "weighted:5") == '{"a": 1}'
    assert cache.get(key, "rules:5") is None
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    name = f"{redis_prefix}rec:recommendations:user-1"
    assert raw.hget(name, "weighted:5") == '{"a": 1}'
    assert 3500 < raw.ttl(name) <= 3600
    invalidate_user(cache, "user-1")
    assert not raw.exists(name)
    assert cache.status().status == "ok"
    raw.close()
