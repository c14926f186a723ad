"""A worker killed mid-batch: no event is lost and none is counted twice."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlmodel import Session, select

from backend.config import PROJECT_ROOT
from backend.db import crud
from backend.db.models import (
    CoInteraction,
    Interaction,
    ProcessedEvent,
    UserPreferences,
    UserRecommendation,
)
from backend.infra.outbox import OutboxSweeper
from backend.infra.stream import RedisEventStream
from backend.jobs.events import BOUGHT_TOGETHER
from backend.jobs.worker import StreamWorker

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def expected_pairs(db) -> Counter:
    """Brute force over the log: each pair of one user's purchases counts once."""
    with Session(db) as s:
        rows = s.exec(select(Interaction).where(Interaction.action == "purchase")).all()
    pairs: Counter = Counter()
    by_user: dict = {}
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        earlier = by_user.setdefault(row.user_id, [])
        for other in dict.fromkeys(earlier):
            if other != row.product_id:
                pairs[(row.product_id, other)] += 1
                pairs[(other, row.product_id)] += 1
        earlier.append(row.product_id)
    return pairs


def test_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(
    redis_components, pg_shop, redis_prefix
):
    components, shop = redis_components, pg_shop
    start = datetime.now(UTC) - timedelta(hours=1)
    names = list(shop.products)
    events = []
    for n, (user, i) in enumerate(itertools.product(shop.users, range(10))):
        events.append(
            {
                "user_id": str(shop.users[user].id),
                "action": "purchase" if i % 2 else "view",
                "product_id": str(shop.products[names[(n * 3 + i) % len(names)]].id),
                "event_id": f"crash-{n}",
                "timestamp": (start + timedelta(seconds=n)).isoformat(),
            }
        )
    assert components.tracker.track_many(events).accepted == 40
    stream = components.stream
    assert isinstance(stream, RedisEventStream)

    settings = components.settings
    env = os.environ | {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "REDIS_KEY_PREFIX": redis_prefix,
        "PROMPTS_DIR": str(settings.prompts_dir),
        "DATA_DIR": str(settings.data_dir),
        "BATCH": "20",
        "COMMIT_EVERY": "5",
        "KILL_AFTER": "10",
    }
    doomed = subprocess.run(
        [sys.executable, "-m", "tests.integration.crashing_worker"],
        cwd=PROJECT_ROOT, env=env, timeout=120, capture_output=True,
    )  # fmt: skip
    assert doomed.returncode == -9, doomed.stderr.decode()[-2000:]

    with Session(components.db) as s:
        assert len(s.exec(select(ProcessedEvent)).all()) == 10  # committed, never acked
    consumers = {c["name"]: c["pending"] for c in stream.consumers()}
    assert consumers["doomed"] == 20  # the whole batch it held is still pending

    reports = []
    processor = components.processor
    real_process = processor.process
    processor.process = lambda evs: reports.append(real_process(evs)) or reports[-1]
    rescuer = StreamWorker(
        stream=RedisEventStream.from_url(
            settings.redis_url, stream=stream.stream, group=settings.event_group
        ),
        processor=processor,
        consumer="rescuer",
        batch_size=25,
        block_ms=100,
        claim_idle_ms=500,
    )
    done = threading.Event()
    runner = threading.Thread(target=lambda: (rescuer.run(done, burst=True), done.set()))
    runner.start()
    runner.join(timeout=120)
    done.set()
    assert not runner.is_alive()

    assert stream.pending_count() == 0
    assert sum(r.processed for r in reports) == 30
    assert sum(r.duplicates for r in reports) == 10  # redelivered, recognised by the ledger
    with Session(components.db) as s:
        ledger = {row.interaction_id for row in s.exec(select(ProcessedEvent)).all()}
        stored = set(
            s.exec(select(Interaction.id).where(Interaction.event_id.like("crash-%"))).all()
        )
        counts = {
            (r.product_id, r.other_product_id): r.count
            for r in s.exec(select(CoInteraction).where(CoInteraction.kind == BOUGHT_TOGETHER))
        }
        versions = {p.user_id: p.event_count for p in s.exec(select(UserPreferences)).all()}
        lists = {r.user_id: r.profile_version for r in s.exec(select(UserRecommendation)).all()}
    assert ledger == stored  # every event processed, exactly once
    assert counts == dict(expected_pairs(components.db))
    for user_id, version in versions.items():
        if lists.get(user_id) is not None:
            assert lists[user_id] == version  # each precomputed list reflects every event
    assert set(lists) >= {u.id for u in shop.users.values() if u.username != "carol"}


DIE_BEFORE_PUBLISH = """
import dataclasses, os, sys
from backend.config import load_settings
from backend.infra.stream import RedisEventStream
from backend.adapters import default_adapters
from backend.wiring import build_components

class DiesBeforePublish(RedisEventStream):
    def publish(self, events):
        os._exit(3)  # killed between the commit and the publish

settings = load_settings(_env_file=None)
stream = DiesBeforePublish.from_url(
    settings.redis_url,
    stream=settings.redis_key_prefix + settings.event_stream,
    group=settings.event_group,
)
adapters = dataclasses.replace(default_adapters(settings), events=stream)
components = build_components(settings, adapters)
components.tracker.track_many([{"user_id": sys.argv[1], "action": "purchase",
                                "product_id": sys.argv[2], "event_id": "doomed-1"}])
"""


def test_api_killed_between_commit_and_publish_the_sweep_announces_the_event_once(
    redis_components, pg_shop, redis_prefix
):
    components, shop = redis_components, pg_shop
    settings = components.settings
    env = os.environ | {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "REDIS_KEY_PREFIX": redis_prefix,
        "PROMPTS_DIR": str(settings.prompts_dir),
        "DATA_DIR": str(settings.data_dir),
    }
    bob, lamp = shop.users["bob"].id, shop.products["Desk Lamp"].id
    doomed = subprocess.run(
        [sys.executable, "-c", DIE_BEFORE_PUBLISH, str(bob), str(lamp)],
        cwd=PROJECT_ROOT, env=env, timeout=120, capture_output=True,
    )  # fmt: skip
    assert doomed.returncode == 3, doomed.stderr.decode()[-2000:]
    stream = components.stream
    assert isinstance(stream, RedisEventStream)
    with Session(components.db) as s:
        stored = s.exec(select(Interaction).where(Interaction.event_id == "doomed-1")).one()
        assert crud.outbox_size(session=s) == 1
    assert stream.group_info().get("entries-read") in (None, 0)  # the stream never heard

    processor = components.processor
    assert processor is not None
    worker = StreamWorker(
        stream=RedisEventStream.from_url(
            settings.redis_url or "", stream=stream.stream, group=settings.event_group
        ),
        processor=processor,
        consumer="sweeper",
        block_ms=100,
        sweeper=OutboxSweeper(db=components.db, stream=stream, grace_seconds=0),
    )
    worker.run(threading.Event(), burst=True)  # sweeps at start, then drains the stream
    assert worker.sweeper is not None and worker.sweeper.sweep() == 0  # nothing left
    worker.run(threading.Event(), burst=True)

    raw = redis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    messages = raw.xrange(stream.stream)
    raw.close()
    assert [m["interaction_id"] for _, m in messages] == [str(stored.id)]  # exactly once
    with Session(components.db) as s:
        assert s.exec(select(ProcessedEvent.interaction_id)).all() == [stored.id]
        assert crud.outbox_size(session=s) == 0
        listed = s.exec(select(UserRecommendation).where(UserRecommendation.user_id == bob)).all()
    assert listed and lamp not in {r.product_id for r in listed}  # the worker's list saw it
