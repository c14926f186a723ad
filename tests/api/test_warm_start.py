"""Warm start: the snapshot, the collaborative models and the embedding model load after
start-up in the background, and /health/ready answers 503 "warming up" until they have.

The slow model is a fake at our ``Embedder`` interface that blocks until the test lets it go.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.adapters import Adapters, default_adapters
from backend.config import Settings
from backend.db import crud
from backend.main import create_app
from backend.recommender.embedder import Vectors
from backend.services.health import Warmup
from backend.wiring import Components
from tests.factories import Shop
from tests.recommender.fakes import FakeEmbedder
from tests.waiting import wait_for


class SlowModel(FakeEmbedder):
    """Loads "slowly": the first encode after ``arm()`` waits until ``release()``."""

    def __init__(self) -> None:
        super().__init__(dim=64)
        self._gate = threading.Event()
        self._gate.set()
        self.texts: list[str] = []

    def arm(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> Vectors:
        assert self._gate.wait(timeout=30), "the test never released the model"
        self.texts += list(texts)
        return super().encode(texts, batch_size=batch_size)


@pytest.fixture
def model() -> SlowModel:
    return SlowModel()


@pytest.fixture
def adapters(settings: Settings, model: SlowModel) -> Adapters:
    return dataclasses.replace(default_adapters(settings), embedder=model)


@pytest.fixture
def indexed(shop: Shop, components: Components, model: SlowModel) -> SlowModel:
    with Session(components.db) as session:
        components.indexer.rebuild(crud.load_catalog(session=session))
    components.snapshots.invalidate()  # a cold process: nothing loaded yet
    model.texts.clear()
    return model


def test_ready_says_warming_up_until_every_loader_is_done(
    indexed: SlowModel, components: Components
) -> None:
    indexed.arm()
    app = create_app(components=components, warm_in_background=True)
    with TestClient(app) as api:
        r = api.get("/health/ready")
        assert r.status_code == 503
        startup = r.json()["components"]["startup"]
        assert startup["status"] == "degraded"
        assert "warming up" in startup["detail"]
        assert "embedding model and vector index" in startup["detail"]
        assert api.get("/health").status_code == 200  # alive all along: only not ready

        indexed.release()
        wait_for(lambda: api.get("/health/ready").status_code == 200, "ready", 20, interval=0.02)
        startup = api.get("/health/ready").json()["components"]["startup"]
        assert startup["status"] == "ok" and startup["detail"].startswith("warm: ")
        for step in ("engine snapshot", "prompt templates", "collaborative models"):
            assert step in startup["detail"]
        # Everything was loaded by the warm start, none of it by a request.
        assert indexed.texts == ["warm start"]
        assert components.snapshots.loaded is not None
        assert components.training.store.current_unchecked() is not None
        search = api.get("/search", params={"q": "wireless earbuds", "top_n": 2})
        assert search.status_code == 200 and search.json()["items"]


def test_components_passed_in_are_warm_before_the_first_request(
    shop: Shop, components: Components
) -> None:
    components.snapshots.invalidate()
    with TestClient(create_app(components=components)) as api:
        assert components.snapshots.loaded is not None  # before any request
        assert api.get("/health/ready").status_code == 200


def test_a_failed_loader_is_reported_and_does_not_hold_readiness_back() -> None:
    order: list[str] = []

    def broken() -> None:
        order.append("broken")
        raise RuntimeError("no such model")

    warmup = Warmup({"snapshot": lambda: order.append("snapshot"), "model": broken})
    assert not warmup.ready and warmup.pending() == ["snapshot", "model"]
    warmup.start()
    assert warmup.wait(timeout=10)
    assert order == ["snapshot", "broken"] and warmup.pending() == []
    health = warmup.health()
    assert health.status == "degraded"
    assert "model failed (RuntimeError)" in health.detail


def test_nothing_to_load_is_ready_at_once() -> None:
    warmup = Warmup({})
    warmup.start()
    assert warmup.ready and warmup.health().status == "ok"
