"""One training in a process of its own (a test starts two): imports no test module, so a
spawned child loads only what training needs."""

from __future__ import annotations

import os
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from backend.db.engine import make_engine
from backend.jobs.training import TrainingBusy, TrainingService
from backend.recommender.snapshot import CatalogSnapshot
from backend.services.snapshots import snapshot_manager


def train_once(url: str, models_dir: str, barrier: Barrier, results: Queue[str]) -> None:
    """Trains once, slowed inside the lock so the two processes' attempts overlap; puts
    "trained" or "busy" on ``results``."""
    engine = make_engine(url)
    training = TrainingService(
        db=engine,
        snapshots=snapshot_manager(engine),
        models_dir=Path(models_dir),
        auto_train=False,
        next_item=False,
    )
    read = training._read

    def slow_read(snapshot: CatalogSnapshot):  # type: ignore[no-untyped-def]
        time.sleep(1.0)  # holding the lock: the other process tries meanwhile
        return read(snapshot)

    training._read = slow_read  # type: ignore[method-assign]
    barrier.wait(60)
    try:
        training.train_now(reason=f"pid {os.getpid()}")
        results.put("trained")
    except TrainingBusy:
        results.put("busy")
    finally:
        engine.dispose()
