"""Fixed-window limits: in-process, and shared through the real Redis (with fallback)."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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
    # A fixed clock: a wall-clock minute boundary between the two hits would reset the window.
    clock = lambda: 1000.0  # noqa: E731
    limiter = RedisRateLimiter(dead, MemoryRateLimiter(clock=clock), clock=clock)
    assert [limiter.hit("ip:x", 1, 60)[0] for _ in range(2)] == [True, False]


class CountingRedis(redis.Redis):
    """A real client that counts its round trips (pipelines)."""

    round_trips = 0

    def pipeline(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.round_trips += 1
        return super().pipeline(*args, **kwargs)


def test_redis_limiter_leases_hits_but_never_allows_more_than_the_limit(redis_url, redis_prefix):
    clients = [CountingRedis.from_url(redis_url) for _ in range(2)]
    first, second = (
        RedisRateLimiter(c, MemoryRateLimiter(), prefix=redis_prefix, clock=lambda: 6000.0)
        for c in clients
    )
    # limit 500: leases of 10 hits, one round trip each
    allowed = sum(first.hit("who:big", 500, 60)[0] for _ in range(495))
    allowed += sum(second.hit("who:big", 500, 60)[0] for _ in range(20))
    allowed += sum(first.hit("who:big", 500, 60)[0] for _ in range(20))
    assert allowed == 500
    assert clients[0].round_trips == 51 and clients[1].round_trips == 1  # 50 leases, 1 refusal
    assert not second.hit("who:big", 500, 60)[0]


def test_redis_limiter_does_not_retry_a_dead_redis_on_every_hit():
    now = [1000.0]
    dead = CountingRedis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    limiter = RedisRateLimiter(dead, MemoryRateLimiter(clock=lambda: now[0]), clock=lambda: now[0])
    assert all(limiter.hit("ip:y", 100, 60)[0] for _ in range(10))
    assert dead.round_trips == 1
    now[0] += 1.5
    limiter.hit("ip:y", 100, 60)
    assert dead.round_trips == 2
