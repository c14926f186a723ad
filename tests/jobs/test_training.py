"""Training the hybrid's next_item source with the CF models: saved, loaded, served, and a
damaged file costing that source only. Known answers on a shop where the next item is fixed:
after the k-th product comes the (k + 1)-th."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from backend.db.engine import session_scope
from backend.db.models import Interaction
from backend.jobs.training import TrainingService
from backend.recommender.cf import next_item_path
from backend.recommender.profile import InteractionRecord
from backend.recommender.sequential import SeqParams
from backend.recommender.snapshot import SnapshotManager
from backend.recommender.strategies import BlendConfig, BlendStrategy, RecommendRequest
from backend.services.vectors import VectorIndex
from tests.factories import Shop, make_user

SMALL = SeqParams(hidden=16, inner=32, layers=1, heads=1, dropout=0.0, lr=1e-2, batch_size=16)
SHOPPERS = 40
NOW = datetime.now(UTC)


@pytest.fixture
def ordered(db: Engine, shop: Shop, snapshots: SnapshotManager) -> SnapshotManager:
    """SHOPPERS more shoppers, each viewing four products of the snapshot's order in a row."""
    snapshot = snapshots.get()
    products = snapshot.products
    with session_scope(db) as session:
        for u in range(SHOPPERS):
            user = make_user(f"shopper{u}")
            session.add(user)
            session.flush()
            for step in range(4):
                product = products[(u + step) % len(products)]
                session.add(
                    Interaction(
                        user_id=user.id,
                        product_id=product.id,
                        action="view",
                        created_at=NOW - timedelta(days=30, hours=-step),
                    )
                )
    # Text vectors as the indexer would attach them (unit length), so the model adds them.
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(products), 12)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    snapshot.attach_embeddings([p.id for p in products], vectors)
    return snapshots


def service(db: Engine, snapshots: SnapshotManager, tmp_path, **knobs) -> TrainingService:
    settings = {
        "models_dir": tmp_path / "models",
        "auto_train": False,
        "check_every_seconds": 0.0,
        "next_item_min_sequences": 10,
        "next_item_epochs": 40,
        "next_item_params": SMALL,
    }
    return TrainingService(db=db, snapshots=snapshots, **{**settings, **knobs})


def request_after(snapshots: SnapshotManager, k: int) -> RecommendRequest:
    products = snapshots.get().products
    return RecommendRequest(
        interactions=[
            InteractionRecord("view", NOW - timedelta(hours=2), products[k - 1].id),
            InteractionRecord("view", NOW - timedelta(hours=1), products[k].id),
        ],
        top_n=3,
        now=NOW,
    )


def test_retrain_saves_the_next_item_model_and_a_fresh_server_serves_it(db, ordered, tmp_path):
    report = service(db, ordered, tmp_path).train_now(reason="threshold")  # the worker's call
    assert "next_item" in report.kinds
    assert report.next_item_seconds is not None and report.next_item_seconds > 0
    weights = next_item_path(tmp_path / "models" / f"cf-{report.version}.npz")
    assert json.loads(weights.with_suffix(".json").read_text())["params"]["text"] == "add"

    fresh = service(db, ordered, tmp_path)  # another process: loads what was saved
    snapshot = ordered.get()
    models = fresh.store.current()
    assert models is not None and models.version == report.version
    assert models.next_item is not None and models.next_item_error is None
    strategy = BlendStrategy("hybrid", BlendConfig(weights={"next_item": 1.0}), fresh.store)
    for k in (2, 5):
        recs = strategy.recommend(snapshot, request_after(ordered, k))
        assert recs[0].index == k + 1  # what follows the k-th product in every sequence
        assert recs[0].evidence.sources[0].name == "next_item"

    served = BlendStrategy(
        "hybrid", BlendConfig(weights={"content": 0.4, "cf": 0.6, "next_item": 0.2}), fresh.store
    )
    recs = served.recommend(snapshot, request_after(ordered, 2))
    assert any(s.name == "next_item" for r in recs for s in r.evidence.sources)


def test_too_few_sequences_leave_the_source_out(db, ordered, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="backend.jobs.training")
    training = service(db, ordered, tmp_path, next_item_min_sequences=SHOPPERS + 10)
    report = training.train_now()
    assert "next_item" not in report.kinds and report.next_item_seconds is None
    assert "next-item model not trained" in caplog.text
    assert not next_item_path(training.model_path(report.version)).exists()


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_damaged_next_item_file_costs_that_source_only(db, ordered, tmp_path, caplog, damage):
    report = service(db, ordered, tmp_path).train_now()
    weights = next_item_path(tmp_path / "models" / f"cf-{report.version}.npz")
    if damage == "corrupt":
        weights.write_bytes(b"not a torch file")
    else:
        weights.unlink()
    fresh = service(db, ordered, tmp_path)
    models = fresh.store.current()
    assert models is not None and models.version == report.version  # CF models still load
    assert models.next_item is None
    assert models.next_item_error is not None and weights.name in models.next_item_error
    assert "recommending without the next_item source" in caplog.text
    health = VectorIndex(db=db, store=None).status(ordered.get(), models)
    assert health.status == "degraded" and weights.name in health.detail
    strategy = BlendStrategy(
        "hybrid", BlendConfig(weights={"cf": 0.6, "next_item": 0.2}), fresh.store
    )
    recs = strategy.recommend(ordered.get(), request_after(ordered, 2))
    assert len(recs) == 3
    assert all(s.name != "next_item" for r in recs for s in r.evidence.sources)


def test_a_servers_first_inline_training_leaves_the_next_item_model_to_the_background(
    db, ordered, tmp_path
):
    training = service(db, ordered, tmp_path, auto_train=True)
    first = training.store.current()  # a request: trains the CF models inline
    assert first is not None and first.next_item is None  # the request did not wait for it
    deadline = time.monotonic() + 60
    while training.training and time.monotonic() < deadline:
        time.sleep(0.05)
    models = training.store.current_unchecked()
    assert models is not None and models.next_item is not None
    assert models.version != first.version
