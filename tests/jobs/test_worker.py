"""The worker's processing: exactly-once statistics, precomputed lists, retrain thresholds."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, func, select

from backend.db import crud
from backend.db.models import CoInteraction, ProcessedEvent, UserRecommendation
from backend.infra.stream import InProcessEventStream, StreamEvent
from backend.jobs import events as events_module
from backend.jobs.events import BOUGHT_TOGETHER, EventProcessor
from backend.jobs.worker import InProcessWorker, StreamWorker
from tests.waiting import wait_for

T0 = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def stream(components) -> InProcessEventStream:
    assert isinstance(components.stream, InProcessEventStream)
    return components.stream


def post(components, shop, *events):
    body = [
        {
            "user_id": str(shop.users[u].id),
            "action": a,
            "product_id": str(shop.products[p].id),
            "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
        }
        for i, (u, a, p) in enumerate(events)
    ]
    result = components.tracker.track_many(body)
    assert result.accepted == len(events), result
    return result


def retrainer(components, threshold: int, retrain=None, *, background: bool = False):
    """An event processor that retrains after ``threshold`` events (``retrain``: the
    trainer; None, none is wired)."""
    return EventProcessor(
        db=components.db,
        recommender=components.recommender,
        top_n=5,
        retrain_threshold=threshold,
        retrain=retrain,
        retrain_in_background=background,
    )


def co_bought(db, shop) -> dict[tuple[str, str], int]:
    by_id = {p.id: name for name, p in shop.products.items()}
    with Session(db) as s:
        rows = s.exec(select(CoInteraction).where(CoInteraction.kind == BOUGHT_TOGETHER)).all()
    return {(by_id[r.product_id], by_id[r.other_product_id]): r.count for r in rows}


def test_co_purchases_are_counted_once_whatever_the_order_or_redelivery(components, shop, stream):
    post(
        components, shop,
        ("bob", "purchase", "Desk Lamp"),
        ("bob", "purchase", "Cast Iron Skillet"),
        ("bob", "view", "Pocket Speaker"),
        ("bob", "purchase", "Electric Kettle"),
        ("dave", "purchase", "Desk Lamp"),
        ("dave", "purchase", "Cast Iron Skillet"),
    )  # fmt: skip
    events = stream.take(100, timeout=0)
    processor = components.processor
    first = processor.process(list(reversed(events)))  # order must not matter
    again = processor.process(events)  # a redelivery changes nothing
    assert (first.processed, first.duplicates) == (6, 0)
    assert (again.processed, again.duplicates) == (0, 6)
    expected = {
        ("Cast Iron Skillet", "Desk Lamp"): 2,
        ("Desk Lamp", "Cast Iron Skillet"): 2,
        ("Electric Kettle", "Desk Lamp"): 1,
        ("Desk Lamp", "Electric Kettle"): 1,
        ("Electric Kettle", "Cast Iron Skillet"): 1,
        ("Cast Iron Skillet", "Electric Kettle"): 1,
    }
    assert co_bought(components.db, shop) == expected
    with Session(components.db) as s:
        assert s.exec(select(func.count()).select_from(ProcessedEvent)).one() == 6
        top = crud.co_interactions(session=s, product_id=shop.products["Desk Lamp"].id)
    assert top[0] == (shop.products["Cast Iron Skillet"].id, 2)


def test_precomputed_lists_are_served_while_fresh_and_match_the_live_answer(
    components, shop, stream
):
    bob = shop.users["bob"].id
    post(components, shop, ("bob", "purchase", "Cast Iron Skillet"))
    recommender = components.recommender
    components.processor.process(stream.take(100, timeout=0))
    assert components.processor.flush_due(everything=True) == 1  # as when bob's events pause
    max_age, recommender.precompute_max_age_seconds = recommender.precompute_max_age_seconds, 0
    live = recommender.recommend(bob, top_n=components.settings.default_top_n)
    recommender.precompute_max_age_seconds = max_age
    with Session(components.db) as s:
        rows = s.exec(select(UserRecommendation).where(UserRecommendation.user_id == bob)).all()
        assert {r.profile_version for r in rows} == {1}
    components.cache.delete(f"rec:recommendations:{bob}")
    hits = recommender.precomputed_hits
    served = recommender.recommend(bob, top_n=components.settings.default_top_n)
    assert recommender.precomputed_hits == hits + 1
    assert [(p.id, p.score) for p in served.recommended_products] == [
        (p.id, p.score) for p in live.recommended_products
    ]
    assert served.llm_explanation == live.llm_explanation

    post(components, shop, ("bob", "view", "Desk Lamp"))  # the stored list is now behind
    fresh = recommender.recommend(bob, top_n=components.settings.default_top_n)
    assert recommender.precomputed_hits == hits + 1
    assert "Desk Lamp" not in [p.name for p in fresh.recommended_products]
    other_size = recommender.recommend(bob, top_n=2)  # another size: computed live
    assert len(other_size.recommended_products) == 2 and recommender.precomputed_hits == hits + 1


def test_retraining_is_triggered_by_the_threshold(components, shop, stream):
    calls = []
    processor = retrainer(components, 3, lambda: calls.append(1))
    post(components, shop, ("bob", "view", "Desk Lamp"), ("bob", "view", "Phone Case"))
    assert processor.process(stream.take(100, timeout=0)).retrain is None
    assert "2 event(s) since the last retrain" in processor.retrain_status()
    post(components, shop, ("bob", "view", "Travel Charger"))
    assert processor.process(stream.take(100, timeout=0)).retrain == "done"
    assert calls == [1]
    assert processor.retrain_status().startswith("0 event(s)")


def test_a_background_retrain_lets_events_through_and_keeps_their_count(components, shop, stream):
    """The worker goes on while the model trains; the events counted meanwhile are not
    forgotten when it finishes, and a second retrain never starts beside the first."""
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow_retrain() -> None:
        calls.append(1)
        started.set()
        assert release.wait(10)

    processor = retrainer(components, 2, slow_retrain, background=True)
    post(components, shop, ("bob", "view", "Desk Lamp"), ("bob", "view", "Phone Case"))
    assert processor.process(stream.take(100, timeout=0)).retrain == "started"
    assert started.wait(10)
    post(components, shop, ("bob", "view", "Travel Charger"), ("bob", "view", "Desk Lamp"))
    report = processor.process(stream.take(100, timeout=0))  # not held up by the training
    assert (report.processed, report.retrain) == (2, "running")
    release.set()
    processor.wait_for_retrain(10)
    assert calls == [1]
    assert processor.retrain_status().startswith("2 event(s)")  # 4 counted, 2 trained on


def test_without_a_trainer_a_due_retrain_is_recorded(components, shop, stream):
    processor = retrainer(components, 2)
    post(components, shop, ("bob", "view", "Desk Lamp"), ("bob", "view", "Phone Case"))
    assert processor.process(stream.take(100, timeout=0)).retrain == "due"
    assert processor.retrain_status().endswith("(retrain due)")


def test_the_in_process_worker_drains_the_queue_in_the_background(components, shop, stream):
    worker = components.background_worker
    assert isinstance(worker, InProcessWorker)
    worker.start()
    try:
        post(components, shop, ("bob", "purchase", "Desk Lamp"), ("bob", "purchase", "Phone Case"))
        stream.join()
    finally:
        worker.stop()
    assert worker.processed == 2 and not worker.running
    with Session(components.db) as s:
        assert s.exec(select(func.count()).select_from(ProcessedEvent)).one() == 2
    assert ("Phone Case", "Desk Lamp") in co_bought(components.db, shop)
    assert worker.status().status == "degraded"  # stopped


class DueIn:
    """A processor with a list due in ``seconds`` (None: none waits)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    def next_due_in(self) -> float | None:
        return self.seconds


@pytest.mark.parametrize(
    ("due_in", "block_ms"), [(None, 1000), (5.0, 1000), (0.25, 251), (0.0, 1), (0.0004, 1)]
)
def test_the_stream_worker_waits_for_messages_until_the_next_list_is_due(due_in, block_ms):
    worker = StreamWorker(
        stream=None,  # type: ignore[arg-type]
        processor=DueIn(due_in),  # type: ignore[arg-type]
        consumer="w1",
        block_ms=1000,
    )
    assert worker._block_ms() == block_ms  # never 0: Redis would wait forever


def test_a_retrain_finding_another_training_skips_and_keeps_its_count(
    components, shop, stream, monkeypatch
):
    """Another process holds the training lock: the retrain does not train beside it, and
    its events still count, so it runs after the next batch."""
    training = components.training
    # The precompute's model check on this cold shop waits this long for the lock the test
    # holds (30 s by default, in each database's run: a wait this test is not about).
    monkeypatch.setattr(training, "inline_wait_seconds", 0.1)
    processor = retrainer(components, 2, lambda: training.train_now(reason="threshold"))  # as wired
    held = training.lock.try_acquire()
    assert held is not None
    post(components, shop, ("bob", "view", "Desk Lamp"), ("bob", "view", "Phone Case"))
    assert processor.process(stream.take(100, timeout=0)).retrain == "skipped"
    assert processor.retrain_status().startswith("2 event(s)")
    held.release()
    post(components, shop, ("bob", "view", "Travel Charger"))
    assert processor.process(stream.take(100, timeout=0)).retrain == "done"
    assert processor.retrain_status().startswith("0 event(s)")
    assert training.latest_version() is not None


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_background_retrain_runs_at_the_lowest_priority(components, shop, stream, monkeypatch):
    seen, lowered = [], []
    real_lower = events_module.lower_this_thread

    def lower() -> int | None:  # records the thread (a run under `nice -n 19` shows no change)
        lowered.append(threading.get_native_id())
        return real_lower()

    monkeypatch.setattr(events_module, "lower_this_thread", lower)

    def retrain() -> None:
        tid = threading.get_native_id()
        seen.append((tid in lowered, os.getpriority(os.PRIO_PROCESS, tid)))

    processor = retrainer(components, 1, retrain, background=True)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    post(components, shop, ("bob", "view", "Desk Lamp"))
    assert processor.process(stream.take(100, timeout=0)).retrain == "started"
    processor.wait_for_retrain(10)
    assert seen == [(True, 19)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


class Batches:
    """A processor that records the batches it is given."""

    def __init__(self) -> None:
        self.batches: list[list[uuid.UUID]] = []

    def process(self, events):
        self.batches.append([e.interaction_id for e in events])

    def flush_due(self, *, everything: bool = False) -> int:
        return 0

    def next_due_in(self) -> float | None:
        return None


def news(n: int) -> list[StreamEvent]:
    at = datetime.now(UTC)
    return [StreamEvent(uuid.uuid4(), uuid.uuid4(), "view", None, at) for _ in range(n)]


def test_the_in_process_worker_gathers_what_arrives_after_a_wake_into_one_batch():
    stream = InProcessEventStream()
    processor = Batches()
    worker = InProcessWorker(
        stream=stream,
        processor=processor,  # type: ignore[arg-type]
        gather_seconds=600,
    )
    first, more = news(1), news(2)
    worker.start()
    try:
        stream.publish(first)
        wait_for(lambda: stream.depth == 0, "the worker takes the first event")
        stream.publish(more)  # within the gathering: it has not processed the first yet
        assert processor.batches == []
    finally:
        worker.stop()  # cuts the gathering short; the batch in hand is processed
    assert processor.batches == [[e.interaction_id for e in first + more]]
    assert worker.processed == 3 and stream.in_flight() == frozenset()
