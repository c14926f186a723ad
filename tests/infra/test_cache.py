"""The cache seam: the in-process TTL cache, and Redis with its degrade-and-recover rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from backend.infra.cache import (
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
        self.counters: dict[str, int] = {}
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("Connection refused")

    def hget(self, key: str, field: str) -> str | None:
        self._check()
        return self.data.get(key, {}).get(field)

    def get(self, key: str) -> str | None:
        self._check()
        return str(self.counters[key]) if key in self.counters else None

    def pipeline(self, transaction: bool = True) -> FlakyPipeline:
        return FlakyPipeline(self)

    def register_script(self, script: str) -> Callable[..., int]:
        """The set-if-version script, in Python (tests with the real Redis run the Lua)."""

        def run(keys: list[str], args: list[object]) -> int:
            self._check()
            version, field, value, _ttl = args
            if str(self.counters.get(keys[1], 0)) != version:
                return 0
            self.data.setdefault(keys[0], {})[str(field)] = str(value)
            return 1

        return run

    def ping(self) -> bool:
        self._check()
        return True

    def scan_iter(self, match: str) -> list[str]:
        self._check()
        prefix = match.rstrip("*")
        return [k for k in [*self.data, *self.counters] if k.startswith(prefix)]


class FlakyPipeline:
    def __init__(self, client: FlakyRedis) -> None:
        self.client = client
        self.ops: list[tuple[str, tuple[str, ...]]] = []

    def hset(self, key: str, field: str, value: str) -> None:
        self.ops.append(("hset", (key, field, value)))

    def unlink(self, key: str) -> None:
        self.ops.append(("unlink", (key,)))

    def incr(self, key: str) -> None:
        self.ops.append(("incr", (key,)))

    def expire(self, key: str, ttl: int) -> None:
        pass

    def execute(self) -> None:
        self.client._check()
        for op, args in self.ops:
            if op == "hset":
                key, field, value = args
                self.client.data.setdefault(key, {})[field] = value
            elif op == "unlink":
                self.client.data.pop(args[0], None)
            else:
                self.client.counters[args[0]] = self.client.counters.get(args[0], 0) + 1


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


def test_memory_versions_refuse_a_write_that_an_invalidation_overtook():
    cache = MemoryCache()
    key = recommendations_key("u1")
    before = cache.version(key)
    assert before is not None
    cache.delete(key)  # an event lands while the caller computes
    assert cache.set_if_version(key, "f", "stale", 60, before) is False
    assert cache.get(key, "f") is None
    now = cache.version(key)
    assert now is not None and cache.set_if_version(key, "f", "fresh", 60, now) is True
    assert cache.get(key, "f") == "fresh"
    cache.delete(recommendations_key("u2"))  # another user's event does not matter
    assert cache.set_if_version(key, "g", "fresh", 60, now) is True


def test_memory_versions_stay_safe_when_old_invalidations_are_forgotten():
    cache = MemoryCache(max_keys=2)
    before = cache.version("a")
    assert before is not None
    for key in ("a", "b", "c"):  # "a" is forgotten: it must still count as invalidated
        cache.delete(key)
    assert cache.set_if_version("a", "f", "stale", 60, before) is False
    later = cache.version("a")
    assert later is not None and cache.set_if_version("a", "f", "v", 60, later) is True


def test_redis_versions_survive_an_outage_replay():
    fake, clock = FlakyRedis(), FakeClock()
    cache = RedisCache(fake, retry_after_seconds=1.0, clock=clock)  # type: ignore[arg-type]
    key = recommendations_key("u1")
    before = cache.version(key)
    assert before == "0"
    fake.down = True
    cache.delete(key)  # remembered during the outage
    assert cache.version(key) is None  # no version: the caller must not store
    fake.down = False
    clock.now += 5
    assert cache.get(key, "f") is None  # recovery replays the delete, moving the version on
    assert cache.set_if_version(key, "f", "stale", 60, before) is False


@pytest.mark.redis
def test_real_redis_set_if_version_is_atomic_with_delete(redis_url, redis_prefix):
    cache = RedisCache.from_url(redis_url, namespace=redis_prefix)
    key = recommendations_key("user-2")
    v0 = cache.version(key)
    assert v0 == "0"
    assert cache.set_if_version(key, "weighted:5", "a", 3600, v0) is True
    cache.delete(key)
    assert cache.set_if_version(key, "weighted:5", "stale", 3600, v0) is False
    assert cache.get(key, "weighted:5") is None
    v1 = cache.version(key)
    assert v1 == "1" and cache.set_if_version(key, "weighted:5", "b", 3600, v1) is True
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    name = f"{redis_prefix}rec:recommendations:user-2"
    assert raw.hget(name, "weighted:5") == "b" and 3500 < raw.ttl(name) <= 3600
    assert 0 < raw.ttl(name + ":epoch") <= 86_400
    raw.close()
