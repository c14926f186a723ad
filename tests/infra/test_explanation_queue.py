"""The explanation queue: dedup, bound, priority and status, in memory and on a real Redis.

One contract, two implementations (the Redis one on the shared server, under a key prefix of
its own): what a storefront submits and what a worker takes must mean the same on both.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import pytest

from backend.infra.explanation_queue import (
    PREPARE,
    SHOPPER,
    ExplanationJob,
    ExplanationQueue,
    InProcessExplanationQueue,
    RedisExplanationQueue,
)

ITEMS = (uuid.UUID(int=1), uuid.UUID(int=2))


def job(user: int, *, priority: int = SHOPPER, items=ITEMS, version="v1", at=1000.0):
    return ExplanationJob(
        user_id=uuid.UUID(int=user),
        strategy="",
        top_n=len(items),
        item_ids=items,
        version=version,
        priority=priority,
        created_at=at,
    )


@pytest.fixture(params=["memory", "redis"])
def queue(request: pytest.FixtureRequest) -> Iterator[ExplanationQueue]:
    if request.param == "memory":
        yield InProcessExplanationQueue(max_jobs=3, clock=lambda: 1010.0)
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    redis_queue = RedisExplanationQueue.from_url(redis_url, prefix=prefix, max_jobs=3)
    yield redis_queue
    redis_queue._client.close()


def take_all(queue: ExplanationQueue) -> list[ExplanationJob]:
    out: list[ExplanationJob] = []
    while True:
        got = queue.take("test", timeout=0.05)
        if not got:
            return out
        out.extend(got)


def test_the_same_list_for_the_same_user_and_prompts_is_queued_once(queue):
    assert queue.submit(job(1)) == "queued"
    assert queue.submit(job(1, priority=PREPARE, at=2000.0)) == "duplicate"
    assert queue.submit(job(1, version="v2")) == "queued"  # a prompt edit or another model
    assert queue.submit(job(1, items=ITEMS[::-1])) == "queued"  # another list
    assert queue.status().depth == 3


def test_a_key_is_taken_until_its_job_is_done(queue):
    queue.submit(job(1))
    [taken] = queue.take("test", timeout=0.5)
    assert taken.user_id == uuid.UUID(int=1) and taken.item_ids == ITEMS
    assert queue.submit(job(1)) == "duplicate"  # running: not twice at once
    queue.done(taken)
    assert queue.status().depth == 0
    assert queue.submit(job(1)) == "queued"


def test_the_queue_is_bounded_and_counts_what_it_refused(queue):
    assert [queue.submit(job(u)) for u in (1, 2, 3, 4, 5)] == ["queued"] * 3 + ["full"] * 2
    status = queue.status()
    assert (status.depth, status.refused) == (3, 2)
    for taken in take_all(queue):
        queue.done(taken)
    assert queue.submit(job(4)) == "queued"  # room again


def test_shoppers_on_the_page_go_before_prepared_lists_and_old_before_new(queue):
    queue.submit(job(1, priority=PREPARE, at=1000.0))
    queue.submit(job(2, priority=SHOPPER, at=1002.0))
    queue.submit(job(3, priority=SHOPPER, at=1001.0))
    order = [j.user_id.int for j in take_all(queue)]
    assert order[-1] == 1  # the prepared list last
    assert sorted(order[:2]) == [2, 3]


def test_status_tells_depth_and_the_oldest_jobs_age():
    queue = InProcessExplanationQueue(clock=lambda: 1010.0)
    assert (queue.status().depth, queue.status().oldest_seconds) == (0, 0.0)
    queue.submit(job(1, at=1004.0))
    queue.submit(job(2, at=1000.0))
    status = queue.status()
    assert (status.depth, status.oldest_seconds) == (2, 10.0)


def test_in_memory_order_within_a_priority_is_oldest_first():
    queue = InProcessExplanationQueue()
    queue.submit(job(2, at=1002.0))
    queue.submit(job(3, at=1001.0))
    assert [j.user_id.int for j in take_all(queue)] == [3, 2]


def test_a_shopper_asking_for_a_prepared_list_moves_it_up_in_memory():
    queue = InProcessExplanationQueue()
    queue.submit(job(1, priority=PREPARE, at=1000.0))
    queue.submit(job(2, priority=PREPARE, at=1001.0))
    assert queue.submit(job(2, priority=SHOPPER, at=1005.0)) == "duplicate"
    taken = take_all(queue)
    assert [(j.user_id.int, j.priority) for j in taken] == [(2, SHOPPER), (1, PREPARE)]
    assert queue.status().depth == 2  # both running until done


def test_a_job_survives_the_trip_through_json_and_redis(redis_url, redis_prefix):
    queue = RedisExplanationQueue.from_url(redis_url, prefix=redis_prefix)
    sent = ExplanationJob(
        user_id=uuid.uuid4(),
        strategy="weighted",
        top_n=2,
        item_ids=ITEMS,
        version="explain_system.j2@3|gemma",
        priority=PREPARE,
        filters=(("category", "Electronics"), ("max_price", 50.0)),
        created_at=1234.5,
    )
    queue.submit(sent)
    [got] = queue.take("test", timeout=0.5)
    assert got.ticket and got.key == sent.key
    assert got == dataclasses.replace(sent, ticket=got.ticket)
    queue.done(got)
    assert queue.status().depth == 0


def test_another_worker_takes_over_what_a_dead_one_left_pending(redis_url, redis_prefix):
    queue = RedisExplanationQueue.from_url(redis_url, prefix=redis_prefix, claim_idle_ms=0)
    queue.submit(job(1))
    [first] = queue.take("dead-worker", timeout=0.5)  # taken, never done
    [again] = queue.take("live-worker", timeout=0.5)
    assert again.key == first.key
    queue.done(again)
    assert queue.status().depth == 0
