"""The embedded worker as a child process (EVENT_WORKER_PROCESS): real children, on SQLite.

It is killed with SIGKILL mid-stream and restarted; every accepted event is processed once,
those accepted while it was down included, and /health tells the restart.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.db import crud
from backend.db.engine import make_engine, session_scope
from backend.db.migrate import upgrade
from backend.db.models import EventOutbox, ProcessedEvent, utcnow
from backend.jobs.events import SINCE_RETRAIN
from backend.jobs.worker_process import WorkerProcess
from backend.wiring import Components, build_components
from tests.factories import Shop, build_shop
from tests.settings import sqlite_url
from tests.waiting import wait_for

T0 = datetime.now(UTC) - timedelta(hours=1)
PRODUCTS = ["Desk Lamp", "Cast Iron Skillet", "Pocket Speaker", "Electric Kettle"]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Components, Shop]]:
    url = sqlite_url(tmp_path)
    engine = make_engine(url)
    upgrade(engine)
    shop = build_shop(engine)
    engine.dispose()
    settings: Settings = load_settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=url,
        snapshot_refresh_seconds=0,
        prompts_dir=PROJECT_ROOT / "prompts",
        event_worker_process=True,
        cf_auto_train=False,
        segment_recompute_threshold=0,
    )
    built = build_components(settings)
    yield built, shop
    if built.background_worker is not None:
        built.background_worker.stop()
    built.db.dispose()


def post(components: Components, shop: Shop, start: int, n: int, *, new: bool = True) -> None:
    users = sorted(shop.users)
    body = [
        {
            "user_id": str(shop.users[users[i % len(users)]].id),
            "action": "purchase" if i % 3 == 0 else "view",
            "product_id": str(shop.products[PRODUCTS[i % len(PRODUCTS)]].id),
            "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
            "event_id": f"evt-{i}",
        }
        for i in range(start, start + n)
    ]
    result = components.tracker.track_many(body)
    assert (result.accepted, result.duplicates) == ((n, 0) if new else (0, n)), result


def processed(components: Components) -> tuple[int, int, int]:
    """Ledger rows, the retrain counter (bumped once per newly counted event), outbox rows."""
    with Session(components.db) as s:
        ledger = s.exec(select(func.count()).select_from(ProcessedEvent)).one()
        outbox = s.exec(select(func.count()).select_from(EventOutbox)).one()
        counted = crud.get_counter(session=s, name=SINCE_RETRAIN)
    return int(ledger), counted, int(outbox)


def test_a_killed_child_is_restarted_and_every_event_is_processed_once(
    setup: tuple[Components, Shop],
) -> None:
    components, shop = setup
    worker = components.background_worker
    assert isinstance(worker, WorkerProcess)
    worker.start()
    post(components, shop, 0, 30)
    wait_for(lambda: processed(components) == (30, 30, 0), "the first 30 events processed", 60)
    first = worker.pid
    assert first is not None

    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not worker.running, "the child's death noticed", 60)
    post(components, shop, 30, 20)  # accepted while no worker runs: they wait in the outbox
    post(components, shop, 30, 5, new=False)  # retried deliveries: not accepted again
    wait_for(lambda: worker.pid not in (None, first), "a new child", 60)
    wait_for(lambda: processed(components) == (50, 50, 0), "the 20 later events processed", 60)

    health = worker.status()
    assert health.status == "ok"
    assert "1 restart(s)" in health.detail and "exit -9" in health.detail
    worker.stop()
    assert not worker.running


def test_an_event_announced_twice_is_counted_once(setup: tuple[Components, Shop]) -> None:
    components, shop = setup
    worker = components.background_worker
    assert isinstance(worker, WorkerProcess)
    worker.start()
    post(components, shop, 0, 6)
    wait_for(lambda: processed(components) == (6, 6, 0), "6 events processed", 60)
    with Session(components.db) as s:
        ids = list(s.exec(select(ProcessedEvent.interaction_id)).all())
    with session_scope(components.db) as s:  # a redelivery: the news again, for done events
        crud.add_to_outbox(session=s, ids=ids, at=utcnow())
    components.stream.publish([])  # (an empty publish wakes no one: the idle poll reads them)
    wait_for(lambda: processed(components)[2] == 0, "the repeated outbox rows handled", 60)
    assert processed(components) == (6, 6, 0)


def test_stopping_the_app_stops_the_child(setup: tuple[Components, Shop]) -> None:
    components, _ = setup
    worker = components.background_worker
    assert isinstance(worker, WorkerProcess)
    worker.start()
    wait_for(lambda: worker.pid is not None, "a child", 60)
    pid = worker.pid
    assert pid is not None
    worker.stop()
    assert not worker.running
    with pytest.raises(ProcessLookupError):  # reaped, not a zombie
        os.kill(pid, 0)
