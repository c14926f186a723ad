"""Training the hybrid's next_item source with the CF models: saved, loaded, served, and a
damaged file costing that source only. Known answers on a shop where the next item is fixed:
after the k-th product comes the (k + 1)-th."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import torch
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.db.engine import make_engine, session_scope
from backend.db.migrate import upgrade
from backend.db.models import Interaction, ModelVersion
from backend.jobs import training as training_module
from backend.jobs.priority import lower_this_thread
from backend.jobs.training import TrainingBusy, TrainingService, TrainingStopped
from backend.recommender import sequential
from backend.recommender.cf import next_item_path
from backend.recommender.next_item import NumpySASRec
from backend.recommender.profile import InteractionRecord
from backend.recommender.sequential import FitStopped, SeqParams, fit
from backend.recommender.snapshot import SnapshotManager
from backend.recommender.strategies import BlendConfig, BlendStrategy, RecommendRequest
from backend.services.vectors import VectorIndex
from tests.factories import Shop, build_shop, make_user
from tests.jobs.trainer_process import train_once
from tests.settings import sqlite_url

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
    saved = NumpySASRec.load(weights)
    assert saved.meta["params"]["text"] == "add" and saved.meta["epochs"] == 40

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


def test_the_next_item_model_is_sasrec_served_without_torch(db, ordered, tmp_path):
    with pytest.raises(ValueError, match="SASRec"):
        service(db, ordered, tmp_path, next_item_params=SeqParams(architecture="gru4rec"))


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
        weights.write_bytes(b"not a model file")
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


# --- one trainer across processes -----------------------------------------------------------


def versions(db: Engine) -> list[ModelVersion]:
    with Session(db) as session:
        return list(session.exec(select(ModelVersion).order_by(col(ModelVersion.trained_at))))


class Gate:
    """Holds a training inside the lock (in ``_read``) until the test opens it."""

    def __init__(self, training: TrainingService) -> None:
        self.entered, self.open = threading.Event(), threading.Event()
        read = training._read

        def held_read(snapshot):
            self.entered.set()
            assert self.open.wait(30), "the test never opened the gate"
            return read(snapshot)

        training._read = held_read  # type: ignore[method-assign]


def test_while_one_service_trains_another_on_the_same_models_dir_does_not(db, ordered, tmp_path):
    """Two processes' services: the second neither trains beside the first nor fails; its
    cold-start check waits for the first's version and loads it."""
    first = service(db, ordered, tmp_path, next_item=False)
    second = service(db, ordered, tmp_path, next_item=False, auto_train=True)
    gate = Gate(first)
    trainer = threading.Thread(target=first.train_now)
    trainer.start()
    assert gate.entered.wait(10)
    with pytest.raises(TrainingBusy, match="another training holds"):
        second.train_now()  # the worker's retrain: skipped, not queued
    threading.Timer(0.3, gate.open.set).start()
    models = second.store.current()  # a request on a cold shop: waits for the first's version
    trainer.join(10)
    saved = versions(db)
    assert [v.reason for v in saved] == ["manual"]  # one training, the first service's
    assert models is not None and models.version == saved[0].version


def test_the_cli_waits_for_a_running_training_and_says_so(db, ordered, tmp_path):
    first = service(db, ordered, tmp_path, next_item=False)
    second = service(db, ordered, tmp_path, next_item=False)
    held = first.lock.try_acquire()
    assert held is not None
    threading.Timer(0.3, held.release).start()
    said: list[str] = []
    report = second.train_now(reason="cli", progress=said.append, wait=None)
    assert said[0].startswith("another training holds") and f"pid {os.getpid()}" in said[0]
    assert [v.version for v in versions(db)] == [report.version]


def test_two_processes_on_one_database_train_once(tmp_path):
    url = sqlite_url(tmp_path)  # a file both processes open
    db = make_engine(url)
    upgrade(db)
    build_shop(db)
    context = multiprocessing.get_context("spawn")  # no forked torch or SQLite handles
    barrier, results = context.Barrier(2), context.Queue()
    children = [
        context.Process(target=train_once, args=(url, str(tmp_path / "models"), barrier, results))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    outcomes = sorted(results.get(timeout=60) for _ in children)
    for child in children:
        child.join(10)
    assert outcomes == ["busy", "trained"]
    assert len(versions(db)) == 1
    db.dispose()


def test_server_mode_api_trains_quick_models_only_and_the_worker_completes_them(
    db, ordered, tmp_path, monkeypatch
):
    api = service(db, ordered, tmp_path, auto_train=True, background_training=False)
    # The newer version's load is held until the test has seen the requests keep the quick
    # models: an .npz version loads in milliseconds, and the loader thread could otherwise
    # finish before ``current()`` returns (CI failed on that race once).
    loading = threading.Event()
    load = api._load_logged
    monkeypatch.setattr(api, "_load_logged", lambda: (loading.wait(30), load()))
    quick = api.store.current()  # a request on a cold small shop: the inline CF models
    assert quick is not None and quick.next_item is None
    assert not api.training and api._thread is None  # no next-item model in this process

    worker = service(db, ordered, tmp_path)
    worker.complete_in_background()
    assert worker._thread is not None
    worker._thread.join(60)
    saved = versions(db)
    assert [v.reason for v in saved] == ["startup", "worker start"]
    assert "next_item" in saved[-1].kinds
    assert api.store.current() is quick  # the API's next check: the requests keep the quick
    assert api._loader is not None  # models while the worker's version loads beside them
    loading.set()
    api._loader.join(30)
    models = api.store.current()
    assert models is not None and models.version == saved[-1].version
    assert models.next_item is not None

    worker.complete_in_background()  # a restarted worker: the newest version is complete
    worker._thread.join(60)
    assert len(versions(db)) == 2


def test_on_a_cold_shop_the_worker_saves_the_quick_models_before_the_full_version(
    db, ordered, tmp_path
):
    """The API processes wait for a first version: it comes after the quick training, not
    after the next-item model's seconds."""
    worker = service(db, ordered, tmp_path)
    worker.complete_in_background()
    assert worker._thread is not None
    worker._thread.join(60)
    saved = versions(db)
    assert [("next_item" in v.kinds) for v in saved] == [False, True]
    assert {v.reason for v in saved} == {"worker start"}


def test_a_worker_on_a_shop_without_enough_sequences_keeps_the_newest_version(
    db, ordered, tmp_path
):
    service(db, ordered, tmp_path, next_item=False).train_now()
    worker = service(db, ordered, tmp_path, next_item_min_sequences=SHOPPERS + 10)
    worker.complete_in_background()
    assert worker._thread is not None
    worker._thread.join(30)
    assert len(versions(db)) == 1


# --- the embedded warm start, priorities, shutdown --------------------------------------------


def test_the_warm_start_waits_for_a_cold_small_shops_first_full_training(db, ordered, tmp_path):
    training = service(db, ordered, tmp_path, auto_train=True)
    training.warm_start()
    models = training.store.current_unchecked()
    assert models is not None and models.next_item is not None  # trained before "ready"
    assert not training.training


def test_the_warm_start_of_a_large_shop_does_not_wait(db, ordered, tmp_path):
    training = service(db, ordered, tmp_path, auto_train=True, inline_train_below=0)
    gate = Gate(training)
    started = time.monotonic()
    training.warm_start()  # its first training runs in the background meanwhile
    assert time.monotonic() - started < 5 and training.training
    assert gate.entered.wait(10)
    gate.open.set()
    assert training._thread is not None
    training._thread.join(60)
    assert training.store.current_unchecked() is not None


class FitSpy:
    """Wraps ``sequential.fit``'s stop callback, which it calls between batches in the
    training thread (its native id, nice value and torch threads there), and records the
    threads that lowered their priority (a test run under ``nice -n 19`` shows no change)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[int, int, int]] = []
        self.lowered: list[int] = []
        self.fitting = threading.Event()
        real_fit, real_lower = sequential.fit, training_module.lower_this_thread

        def spied(*args, stop, **kwargs):
            def asked() -> bool:
                tid = threading.get_native_id()
                nice = os.getpriority(os.PRIO_PROCESS, tid)
                self.seen.append((tid, nice, torch.get_num_threads()))
                self.fitting.set()
                return bool(stop())

            return real_fit(*args, stop=asked, **kwargs)

        def lower() -> int | None:
            self.lowered.append(threading.get_native_id())
            return real_lower()

        monkeypatch.setattr(sequential, "fit", spied)
        monkeypatch.setattr(training_module, "lower_this_thread", lower)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_the_background_training_runs_at_the_lowest_priority_on_one_torch_thread(
    db, ordered, tmp_path, monkeypatch
):
    spy = FitSpy(monkeypatch)
    training = service(db, ordered, tmp_path, auto_train=True)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    training.warm_start()
    assert spy.seen  # the next-item model was fitted, in the background thread
    assert {tid for tid, _, _ in spy.seen} == set(spy.lowered)  # that thread lowered itself
    assert threading.get_native_id() not in spy.lowered
    assert {nice for _, nice, _ in spy.seen} == {19}
    assert {threads for _, _, threads in spy.seen} == {1}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # not this one


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_lowering_a_threads_priority_leaves_the_others_alone():
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int | None] = []
    thread = threading.Thread(target=lambda: seen.append(lower_this_thread()))
    thread.start()
    thread.join()
    assert seen == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_close_stops_a_fit_between_batches_and_saves_nothing_of_it(
    db, ordered, tmp_path, caplog, monkeypatch
):
    caplog.set_level(logging.INFO, logger="backend.jobs.training")
    spy = FitSpy(monkeypatch)
    training = service(db, ordered, tmp_path, auto_train=True, next_item_epochs=10_000)
    assert training.store.current() is not None  # the inline CF models; the fit follows
    assert spy.fitting.wait(30)
    started = time.monotonic()
    training.close(timeout=30)
    assert time.monotonic() - started < 10
    assert training._thread is not None and not training._thread.is_alive()
    assert [v.reason for v in versions(db)] == ["startup"]  # the inline version only
    assert "background training stopped" in caplog.text
    with pytest.raises(TrainingStopped):
        training.train_now()


def test_a_stopped_fit_raises():
    seqs = [[1, 2, 3], [2, 3, 4]] * 8
    with pytest.raises(FitStopped):
        fit(seqs, 6, SMALL, epochs=3, stop=lambda: True)
