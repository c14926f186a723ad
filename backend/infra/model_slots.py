"""The model server's slots on Redis: one count for the API's processes and the workers.

Each holder is a member of a sorted set scored by when its lease ends. Taking a slot is one
Lua call: drop the leases that ended (a holder that died gives its slot back that way), then
add ours if fewer than ``concurrency`` remain. A waiter polls, a little slower each time, up
to its timeout. A lease lasts ``lease_seconds``, longer than one model call with its retries
(``4 × LLM_DEADLINE_SECONDS + 30 s`` from the wiring).

When Redis does not answer, the slots of this process alone stand in (the count per process,
as without Redis) and ``where()`` says so (/health shows it), until Redis answers again: the
model is still asked, never more than ``concurrency`` times at once from here.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from backend.llm.slots import Lease, LocalModelSlots, OnceLease

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

FIRST_POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.25


class RedisModelSlots:
    def __init__(
        self,
        client: redis.Redis,
        *,
        key: str,
        concurrency: int,
        lease_seconds: float = 60.0,
        retry_after_seconds: float = 1.0,
        clock: Any = time.time,
        sleep: Any = time.sleep,
    ) -> None:
        self.client = client
        self.key = key
        self.concurrency = max(concurrency, 1)
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._sleep = sleep
        self._take = client.register_script(_TAKE)
        self._fallback = LocalModelSlots(self.concurrency)
        self._redis_error: str | None = None
        # While Redis is away it is asked again after this long, not on every acquire (each
        # try would wait for the connect timeout).
        self.retry_after_seconds = retry_after_seconds
        self._down_until = 0.0

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisModelSlots:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No client-side retries (redis-py's default backs off for seconds): a stream waits
        # half a second for a slot, and Redis away means counting in this process at once.
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, **kwargs)

    def acquire(self, timeout: float | None = None) -> Lease | None:
        token = uuid.uuid4().hex
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = FIRST_POLL_SECONDS
        while True:
            taken = self._try(token)
            if taken is None:  # Redis is down: this process's own count, for now
                return self._fallback.acquire(self._left(deadline))
            if taken:
                return OnceLease(lambda: self._give_back(token))
            left = self._left(deadline)
            if left is not None and left <= 0:
                return None
            self._sleep(poll if left is None else min(poll, left))
            poll = min(poll * 1.5, MAX_POLL_SECONDS)

    def where(self) -> str:
        if self._redis_error is not None:
            return f"process (Redis unavailable: {self._redis_error})"
        return "redis"

    def holders(self) -> int:
        """Leases held now, across processes (for tests and debugging)."""
        import redis

        try:
            now = self._clock()
            return int(self.client.zcount(self.key, f"({now}", "+inf"))
        except redis.RedisError:
            return 0

    def _try(self, token: str) -> bool | None:
        import redis

        if self._redis_error is not None and time.monotonic() < self._down_until:
            return None  # still counting in this process
        now = self._clock()
        try:
            taken = self._take(
                keys=[self.key],
                args=[
                    now,
                    self.concurrency,
                    now + self.lease_seconds,
                    token,
                    int(self.lease_seconds * 2000),
                ],
            )
        except redis.RedisError as exc:
            if self._redis_error is None:
                log.warning("model slots: Redis unavailable (%s); counting in this process", exc)
            self._redis_error = type(exc).__name__
            self._down_until = time.monotonic() + self.retry_after_seconds
            return None
        if self._redis_error is not None:
            log.info("model slots: Redis answers again; the count is shared again")
            self._redis_error = None
        return bool(taken)

    def _give_back(self, token: str) -> None:
        import redis

        try:
            self.client.zrem(self.key, token)
        except redis.RedisError as exc:  # the lease ends by itself after lease_seconds
            log.warning("model slots: could not give a slot back (%s)", exc)

    @staticmethod
    def _left(deadline: float | None) -> float | None:
        return None if deadline is None else max(deadline - time.monotonic(), 0.0)
