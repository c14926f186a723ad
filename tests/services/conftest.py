from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from backend.infra.cache import MemoryCache
from backend.infra.stream import InProcessEventStream
from backend.recommender.snapshot import SnapshotManager
from backend.services.snapshots import snapshot_manager
from backend.services.track import TrackingService
from tests.factories import Shop, build_shop


@pytest.fixture
def shop(db: Engine) -> Shop:
    return build_shop(db)


@pytest.fixture
def snapshots(db: Engine, shop: Shop) -> SnapshotManager:
    manager = snapshot_manager(db)
    manager.get()
    return manager


@pytest.fixture
def queue() -> InProcessEventStream:
    return InProcessEventStream()


@pytest.fixture
def tracker(db: Engine, snapshots: SnapshotManager, queue: InProcessEventStream) -> TrackingService:
    return TrackingService(db=db, snapshots=snapshots, cache=MemoryCache(), stream=queue)
