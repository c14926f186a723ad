"""The worker child's loop on a thread of the test: the outbox as its queue, and the
impression log as its sign that a request has answered a shopper since their event."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, func, select

from backend.adapters import default_adapters
from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import session_scope
from backend.db.models import EventOutbox, ProcessedEvent, RecAnalytics, utcnow
from backend.jobs.worker_process import AnsweredSince, OutboxWorker
from backend.wiring import Components, build_components
from tests.factories import Shop
from tests.llm.fakes import FakeLLM

T0 = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def worker(components: Components) -> Iterator[OutboxWorker]:
    wake_read, wake_write = os.pipe()
    reports: list[dict[str, Any]] = []
    yield OutboxWorker(
        db=components.db,
        processor=components.processor,
        wake_fd=wake_read,
        report=reports.append,
        answered=AnsweredSince(components.db),
    )
    os.close(wake_read)
    os.close(wake_write)


def post(components: Components, shop: Shop, user: str, product: str) -> None:
    result = components.tracker.track_many(
        [
            {
                "user_id": str(shop.users[user].id),
                "action": "view",
                "product_id": str(shop.products[product].id),
                "timestamp": T0.isoformat(),
            }
        ]
    )
    assert result.accepted == 1, result


def shown(components: Components, shop: Shop, user: str, at: datetime) -> None:
    with session_scope(components.db) as s:
        s.add(
            RecAnalytics(
                response_id=uuid.uuid4(),
                user_id=shop.users[user].id,
                product_id=shop.products["Desk Lamp"].id,
                position=0,
                strategy="hybrid",
                explanation_source="template",
                created_at=at,
                attributable_until=at + timedelta(hours=24),
            )
        )


def test_the_outbox_is_the_queue_and_each_event_is_processed_once(
    components: Components, shop: Shop, worker: OutboxWorker
) -> None:
    post(components, shop, "bob", "Desk Lamp")
    post(components, shop, "dave", "Electric Kettle")
    events = worker.pending()
    assert {e.user_id for e in events} == {shop.users["bob"].id, shop.users["dave"].id}
    components.processor.process(events)
    assert worker.pending() == []  # processing removed their outbox rows
    components.processor.process(events)  # the same news again: the ledger holds
    with Session(components.db) as s:
        assert s.exec(select(func.count()).select_from(ProcessedEvent)).one() == 2
        assert s.exec(select(func.count()).select_from(EventOutbox)).one() == 0


def test_a_shopper_is_answered_only_by_an_impression_after_their_latest_event(
    components: Components, shop: Shop, worker: OutboxWorker
) -> None:
    bob, dave = shop.users["bob"].id, shop.users["dave"].id
    shown(components, shop, "bob", utcnow() - timedelta(minutes=5))  # before the event
    post(components, shop, "bob", "Desk Lamp")
    post(components, shop, "dave", "Desk Lamp")
    worker.pending()
    assert worker.answered(bob) is False  # shown, but before the event: precompute

    post(components, shop, "dave", "Electric Kettle")
    worker.pending()
    shown(components, shop, "dave", utcnow() + timedelta(seconds=1))
    assert worker.answered(dave) is True
    assert worker.answered(dave) is False  # asked once per list that came due
    assert worker.answered(uuid.uuid4()) is False  # no event seen: precompute


def test_the_childs_processor_is_given_its_answers_and_no_explanation_queue(
    tmp_path: Path,
) -> None:
    """Built so at the composition root, nothing set afterwards: with an LLM the API's
    processor queues explanations, the child's does not (their queue is the API's memory)."""
    settings = load_settings(
        _env_file=None, data_dir=tmp_path, prompts_dir=PROJECT_ROOT / "prompts"
    )
    adapters = dataclasses.replace(default_adapters(settings, serving=False), llm=FakeLLM())
    api = build_components(settings, adapters)
    answered = AnsweredSince(adapters.db)
    child = build_components(settings, adapters, serving=False, worker_child=answered)
    try:
        assert api.processor.prepare is not None and api.processor.answered is None
        assert child.processor.prepare is None and child.processor.answered is answered
    finally:
        adapters.db.dispose()
