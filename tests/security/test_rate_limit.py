"""Fixed-window limits: in-process, and shared through the real Redis (with fallback)."""

from __future__ import annotations

import redis

from backend.security.rate_limit import MemoryRateLimiter, RedisRateLimiter


def test_memory_limiter_counts_per_key_and_window():
    now = [1000.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    assert [limiter.hit("ip:a", 2, 60)[0] for _ in range(3)] == [True, True, False]
    assert limiter.hit("ip:b", 2, 60)[0] is True
    now[0] += 60
    assert limiter.hit("ip:a", 2, 60)[0] is True


def test_redis_limiter_is_shared_between_processes(redis_url, redis_prefix):
    first = RedisRateLimiter(
        redis.Redis.from_url(redis_url), MemoryRateLimiter(), prefix=redis_prefix
    )
    second = RedisRateLimiter(
        redis.Redis.from_url(redis_url), MemoryRateLimiter(), prefix=redis_prefix
    )
    assert first.hit("who:shop", 3, 60)[0] and second.hit("who:shop", 3, 60)[0]
    assert first.hit("who:shop", 3, 60)[0] is True
    allowed, retry_after = second.hit("who:shop", 3, 60)
    assert allowed is False and 0 < retry_after <= 61


def test_redis_down_falls_back_to_local_limits():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = RedisRateLimiter(dead, MemoryRateLimiter())
    assert [limiter.hit("ip:x", 1, 60)[0] for _ in range(2)] == [True, False]
