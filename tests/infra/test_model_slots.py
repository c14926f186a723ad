"""The model server's slots: one count per process, or one on Redis for every process.

Two ``RedisModelSlots`` on one key stand for two processes (the API and `shopwise worker`):
together they never hold more than ``concurrency`` leases. Random schedules of takers check
the bound under contention; a dead holder's lease ends by itself; with Redis away each
process counts for itself, and says so.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from backend.infra import model_slots
from backend.infra.model_slots import RedisModelSlots
from backend.llm.slots import LocalModelSlots, held


def redis_slots(redis_url: str, key: str, concurrency: int, **kwargs) -> RedisModelSlots:
    return RedisModelSlots.from_url(redis_url, key=key, concurrency=concurrency, **kwargs)


@pytest.fixture(params=["local", "redis"])
def make_slots(request, redis_prefix):
    """A factory of slot counts that share one count (processes on one Redis key; for the
    local kind, the same object, as threads of one process share it)."""
    if request.param == "local":
        shared: dict[int, LocalModelSlots] = {}
        return lambda n: shared.setdefault(n, LocalModelSlots(n))
    url = request.getfixturevalue("redis_url")
    return lambda n: redis_slots(url, redis_prefix + "llm:slots", n)


def test_no_more_than_concurrency_leases_and_release_is_idempotent(make_slots):
    first, second = make_slots(2), make_slots(2)
    a, b = first.acquire(timeout=0), second.acquire(timeout=0)
    assert a is not None and b is not None
    assert first.acquire(timeout=0) is None and second.acquire(timeout=0.05) is None
    a.release()
    a.release()  # twice: still one slot back, not two
    c = second.acquire(timeout=0)
    assert c is not None
    assert first.acquire(timeout=0) is None
    b.release()
    c.release()


def test_a_waiter_gets_the_slot_when_it_is_given_back(make_slots):
    slots = make_slots(1)
    lease = slots.acquire(timeout=0)
    threading.Timer(0.2, lease.release).start()
    started = time.monotonic()
    got = make_slots(1).acquire(timeout=5)
    assert got is not None
    assert 0.15 < time.monotonic() - started < 4
    got.release()


@pytest.mark.parametrize("seed", range(3))
def test_random_takers_across_processes_never_exceed_the_bound(make_slots, seed):
    rng = random.Random(seed)
    concurrency = rng.randint(1, 3)
    holders = [make_slots(concurrency) for _ in range(3)]  # three "processes"
    lock = threading.Lock()
    now = most = done = 0

    def taker(index: int) -> None:
        nonlocal now, most, done
        local = random.Random(seed * 100 + index)
        for _ in range(4):
            with held(holders[local.randrange(len(holders))]):
                with lock:
                    now += 1
                    most = max(most, now)
                time.sleep(local.uniform(0, 0.01))
                with lock:
                    now -= 1
        with lock:
            done += 1

    threads = [threading.Thread(target=taker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert done == 6
    assert most == concurrency  # reached, never passed


def test_a_dead_holders_lease_ends_by_itself(redis_url, redis_prefix):
    key = redis_prefix + "llm:slots"
    dead = redis_slots(redis_url, key, 1, lease_seconds=0.3)
    assert dead.acquire(timeout=0) is not None  # never released: its process died
    alive = redis_slots(redis_url, key, 1, lease_seconds=0.3)
    assert alive.acquire(timeout=0) is None
    assert alive.holders() == 1
    lease = alive.acquire(timeout=3)
    assert lease is not None
    lease.release()
    assert alive.holders() == 0


def test_with_redis_away_each_process_counts_for_itself_and_says_so():
    slots = RedisModelSlots.from_url("redis://127.0.0.1:1/0", key="nowhere", concurrency=1)
    tries = []
    take = slots._take
    slots._take = lambda **kw: tries.append(1) or take(**kw)  # type: ignore[method-assign]
    lease = slots.acquire(timeout=0)
    assert lease is not None  # the model is still asked
    assert slots.acquire(timeout=0) is None  # but no more than concurrency at once from here
    assert slots.where().startswith("process (Redis unavailable")
    lease.release()
    assert slots.acquire(timeout=0) is not None
    assert tries == [1]  # Redis is asked again after retry_after_seconds, not on every acquire


def test_when_redis_answers_again_the_count_is_shared_again(redis_url, redis_prefix):
    slots = redis_slots(redis_url, redis_prefix + "llm:slots", 1, retry_after_seconds=0.0)
    real = slots.client
    away = RedisModelSlots.from_url("redis://127.0.0.1:1/0", key="x", concurrency=1)
    slots.client, slots._take = away.client, away._take  # Redis goes away
    local = slots.acquire(timeout=0)
    assert local is not None and slots.where().startswith("process")
    local.release()
    slots.client, slots._take = real, real.register_script(model_slots._TAKE)  # and is back
    lease = slots.acquire(timeout=0)
    assert lease is not None and slots.where() == "redis" and slots.holders() == 1
    lease.release()
