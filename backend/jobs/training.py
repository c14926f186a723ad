"""Training the collaborative models from the interactions table; versions are recorded.

``shopwise train`` and the event worker (after ``RETRAIN_THRESHOLD`` new events) call
``train_now``: it trains, saves the arrays under ``DATA_DIR/models`` and records a
``model_version`` row. It also fits the hybrid's ``next_item`` source, SASRec with the items'
text on the shoppers' ordered items, for a fixed number of epochs (a shop has no held-out
targets to stop on; the evaluation's early stopping chose ~10 on Amazon Scientific).
A serving process picks the newest version up by itself (a cheap check, rate-limited, on the
recommend path) and, when none exists yet, trains one in a background thread, so the API
starts fast and never trains inside a request.

One process trains at a time (a file lock in the models directory, held for a whole training);
the others load what it saves. In server mode the worker fits the next-item model and the API
processes never do. A background training runs at the lowest CPU priority, on one torch
thread, and ``close`` stops it between batches. Only training imports torch: the next-item
model is saved and served as numpy arrays (``next_item.NumpySASRec``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from backend.db.engine import session_scope
from backend.db.models import Interaction, ModelVersion
from backend.jobs.priority import lower_this_thread
from backend.jobs.training_lock import HeldLock, TrainingLock
from backend.recommender.cf import CFModels, CFParams, ModelStore, train, user_items_matrix
from backend.recommender.cf import load as load_models
from backend.recommender.cf import save as save_models
from backend.recommender.next_item import NumpySASRec
from backend.recommender.profile import DEFAULT_ACTION_WEIGHTS
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager

if TYPE_CHECKING:
    from backend.recommender.sequential import SeqParams

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainReport:
    version: str
    kinds: list[str]
    n_users: int
    n_items: int
    n_interactions: int
    seconds: float
    next_item_seconds: float | None = None  # None: the next-item model was not trained
    next_item_deferred: bool = False  # there was one to train, left for a later training

    def __str__(self) -> str:
        sequential = (
            f" (next-item model {self.next_item_seconds:.1f} s)"
            if self.next_item_seconds is not None
            else ""
        )
        return (
            f"version {self.version}: {', '.join(self.kinds) or 'no models'} on "
            f"{self.n_interactions} user-item pairs ({self.n_users} users, {self.n_items} items) "
            f"in {self.seconds:.1f} s{sequential}"
        )


# Below this many shoppers with two or more items a sequential model learns nothing worth
# serving: the next_item source is left out (its weight then counts for nothing).
NEXT_ITEM_MIN_SEQUENCES = 50
NEXT_ITEM_EPOCHS = 10
# The worker retrains between event batches: fewer epochs rather than a stalled worker (at
# 100k products an epoch takes ~18 min on one thread, bench/retrieval_bench.py).
NEXT_ITEM_MAX_SECONDS = 20 * 60
# A cold small shop's first check waits this long for another process's training (its
# version, or the lock) before serving without collaborative models; requests wait on it.
INLINE_WAIT_SECONDS = 30.0
# The warm start waits for a first training only on the inline path (a small shop: seconds);
# this bounds it all the same, so readiness is never held back for long.
WARM_WAIT_SECONDS = 120.0


class TrainingBusy(Exception):
    """Another training (of this process or another) holds the models directory's lock."""


class TrainingStopped(Exception):
    """The service is closing: the training was cut short and nothing of it saved."""


@dataclass(frozen=True, slots=True)
class _History:
    """What a training reads: each shopper's weighted items and ordered items, as indexes
    into ``snapshot``'s products."""

    snapshot: CatalogSnapshot
    events_seen: int
    n_users: int
    triples: list[tuple[int, int, float]]
    sequences: list[list[int]]
    usable: int  # shoppers with two or more items: what a sequential model learns from


class TrainingService:
    """Keeps the collaborative models current: it owns their store, and every read of the
    store (``store.current()``) lets it load saved models or start a training first.

    One training at a time across processes (``TrainingLock``): a process that finds the lock
    taken does not train, and loads the version the holder saves. ``background_training``:
    whether this process trains in the background (the full version, with the next-item
    model). Server mode's API processes do not (their worker does): they train only a small
    cold shop's quick models inline, and load the newer versions the worker saves.
    """

    def __init__(
        self,
        *,
        db: Engine,
        snapshots: SnapshotManager,
        params: CFParams = CFParams(),  # noqa: B008 - frozen dataclass
        action_weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
        models_dir: Path,
        auto_train: bool = True,
        check_every_seconds: float = 30.0,
        inline_train_below: int = 20_000,
        next_item: bool = True,
        next_item_epochs: int = NEXT_ITEM_EPOCHS,
        next_item_min_sequences: int = NEXT_ITEM_MIN_SEQUENCES,
        next_item_params: SeqParams | None = None,
        next_item_max_seconds: float = NEXT_ITEM_MAX_SECONDS,
        background_training: bool = True,
        inline_wait_seconds: float = INLINE_WAIT_SECONDS,
        warm_wait_seconds: float = WARM_WAIT_SECONDS,
    ) -> None:
        if next_item_params is not None and next_item_params.architecture != "sasrec":
            raise ValueError("the served next-item model is SASRec (next_item.NumpySASRec)")
        self.db = db
        self.snapshots = snapshots
        self.store = ModelStore(on_access=self.ensure_current)
        self.params = params
        self.action_weights = action_weights
        self.models_dir = models_dir
        self.auto_train = auto_train
        self.inline_train_below = inline_train_below
        self.check_every_seconds = check_every_seconds
        self.next_item = next_item
        self.next_item_epochs = next_item_epochs
        self.next_item_min_sequences = next_item_min_sequences
        self.next_item_params = next_item_params  # None: SASRec's defaults
        self.next_item_max_seconds = next_item_max_seconds
        self.background_training = background_training
        self.inline_wait_seconds = inline_wait_seconds
        self.warm_wait_seconds = warm_wait_seconds
        self.lock = TrainingLock(models_dir)
        self._flag_lock = threading.Lock()  # guards _training and _loader
        self._check_lock = threading.Lock()
        self._stop = threading.Event()
        self._training = False
        self._thread: threading.Thread | None = None
        self._loader: threading.Thread | None = None  # a newer version, read beside requests
        # A cold shop's first full training, begun inline by this process: the warm start's.
        self._first_training: threading.Thread | None = None
        self._last_check = 0.0

    def train_now(
        self,
        *,
        reason: str = "manual",
        progress: Callable[[str], None] | None = None,
        next_item: bool = True,
        wait: float | None = 0.0,
    ) -> TrainReport:
        """Train, save and record a version; ``next_item=False`` leaves the sequential model
        out (the report's ``next_item_deferred`` says whether there was one to train).

        ``wait``: seconds to wait for another training to finish (None: as long as it takes);
        ``TrainingBusy`` when it has not by then."""
        with self._acquire(wait, progress):
            return self._train(reason=reason, progress=progress, next_item=next_item)

    def _acquire(
        self, wait: float | None, progress: Callable[[str], None] | None = None
    ) -> HeldLock:
        def waiting(message: str) -> None:
            log.info("%s", message)
            if progress is not None:
                progress(message)

        if self._stop.is_set():
            raise TrainingStopped("the training service is closed")
        held = self.lock.acquire(
            wait, give_up=self._stop.is_set, on_wait=waiting if wait != 0 else None
        )
        if held is None:
            if self._stop.is_set():
                raise TrainingStopped("the training service is closed")
            raise TrainingBusy(f"another training holds {self.lock.path} ({self.lock.holder()})")
        return held

    def _train(
        self,
        *,
        reason: str,
        progress: Callable[[str], None] | None = None,
        next_item: bool = True,
        history: _History | None = None,
    ) -> TrainReport:
        """``train_now`` under the lock; ``history``: what the caller has read already."""
        started = time.perf_counter()
        history = history or self._read(self.snapshots.get())
        snapshot = history.snapshot
        ids = [p.id for p in snapshot.products]
        matrix = user_items_matrix(history.triples, history.n_users, len(ids))
        text = (
            snapshot.embeddings
            if snapshot.embeddings is not None and np.any(snapshot.embeddings)
            else None
        )
        models: CFModels = train(
            matrix,
            ids,
            params=self.params,
            item_embeddings=text,
            progress=progress,
            sequences=history.sequences,
        )
        next_item_seconds = None
        enough = self._enough_sequences(history.usable)
        if enough and next_item:
            self._stopping()
            models.next_item, next_item_seconds = self._fit_next_item(
                history, len(ids), text, progress
            )
        self._stopping()  # nothing of a training cut short is saved
        save_models(models, self.model_path(models.version))
        seconds = time.perf_counter() - started
        self.store.set(models)
        report = TrainReport(
            version=models.version,
            kinds=models.kinds(),
            n_users=models.n_users,
            n_items=len(ids),
            n_interactions=models.n_interactions,
            seconds=seconds,
            next_item_seconds=next_item_seconds,
            next_item_deferred=enough and not next_item,
        )
        with session_scope(self.db) as session:
            session.add(
                ModelVersion(
                    version=models.version,
                    kinds=report.kinds,
                    params={k: float(v) for k, v in asdict(self.params).items()},
                    n_users=report.n_users,
                    n_items=report.n_items,
                    n_interactions=report.n_interactions,
                    events_seen=history.events_seen,
                    reason=reason,
                    seconds=seconds,
                )
            )
        log.info("collaborative models trained (%s): %s", reason, report)
        return report

    def _read(self, snapshot: CatalogSnapshot) -> _History:
        with Session(self.db) as session:
            events_seen = _event_count(session)
            # Oldest first: the transition model learns from each shopper's order.
            rows = session.execute(
                sa.select(
                    col(Interaction.user_id), col(Interaction.product_id), col(Interaction.action)
                )
                .where(col(Interaction.product_id).is_not(None))
                .order_by(col(Interaction.created_at), col(Interaction.id))
            ).all()
        users: dict[uuid.UUID, int] = {}
        triples: list[tuple[int, int, float]] = []
        sequences: list[list[int]] = []
        for user_id, product_id, action in rows:
            i = snapshot.index.get(product_id)
            weight = self.action_weights.get(action, 0.0)
            if i is None or weight <= 0:
                continue
            u = users.setdefault(user_id, len(users))
            triples.append((u, i, weight))
            if u == len(sequences):
                sequences.append([])
            if not sequences[u] or sequences[u][-1] != i:  # a repeated view is not a step
                sequences[u].append(i)
        usable = sum(1 for s in sequences if len(s) >= 2)
        return _History(snapshot, events_seen, len(users), triples, sequences, usable)

    def _stopping(self) -> None:
        if self._stop.is_set():
            raise TrainingStopped("the training service is closing")

    def _enough_sequences(self, usable: int) -> bool:
        """Whether a sequential model has enough to learn from (says so in the log if not)."""
        if not self.next_item:
            return False
        if usable >= self.next_item_min_sequences:
            return True
        log.info(
            "next-item model not trained: %d shoppers with two or more items (needs %d); "
            "the hybrid's next_item source is left out",
            usable,
            self.next_item_min_sequences,
        )
        return False

    def _fit_next_item(
        self,
        history: _History,
        n_items: int,
        text: np.ndarray | None,
        progress: Callable[[str], None] | None,
    ) -> tuple[NumpySASRec, float]:
        """SASRec on the shoppers' ordered items (with the items' text when indexed), in
        the numpy form that is served and saved."""
        from backend.recommender import sequential  # torch: imported only to train

        params = replace(
            self.next_item_params or sequential.SeqParams(),
            text="add" if text is not None else "none",
        )
        if progress is not None:
            epochs = self.next_item_epochs
            progress(f"next-item model (SASRec, text={params.text}, {epochs} epochs)")
        try:
            model, info = sequential.fit(
                history.sequences,
                n_items,
                params,
                epochs=self.next_item_epochs,
                text=text.astype(np.float32) if text is not None else None,
                max_seconds=self.next_item_max_seconds,
                stop=self._stop.is_set,
            )
        except sequential.FitStopped as exc:
            raise TrainingStopped(f"next-item model {exc}") from exc
        assert isinstance(model, sequential.SASRec)  # the architecture checked in __init__
        scorer = sequential.to_numpy(model, params, epochs=info.epochs, seconds=info.seconds)
        log.info(
            "next-item model trained: %d sequences, %d items, %d epochs in %.1f s, %.1f MB",
            history.usable,
            n_items,
            info.epochs,
            info.seconds,
            scorer.nbytes / 2**20,
        )
        return scorer, info.seconds

    def latest_version(self) -> ModelVersion | None:
        with Session(self.db) as session:
            return session.exec(
                select(ModelVersion).order_by(col(ModelVersion.trained_at).desc()).limit(1)
            ).first()

    def new_events(self) -> int:
        """Interactions stored since the current models were trained."""
        latest = self.latest_version()
        with Session(self.db) as session:
            total = _event_count(session)
        return total - (latest.events_seen if latest else 0)

    def ensure_current(self) -> None:
        """Load a newer saved version (beside the requests once one serves), or train a first
        one; rate-limited and cheap.

        Checks are serialised and the clock is set when one ends, so a request arriving
        while a small shop's first model trains inline waits for it instead of answering
        without it (two requests never see different models for no reason).
        """
        if self._training or time.monotonic() - self._last_check < self.check_every_seconds:
            return
        with self._check_lock:
            if time.monotonic() - self._last_check < self.check_every_seconds:
                return
            try:
                self._check()
            except TrainingStopped:
                pass  # closing
            except Exception:  # the database or the file is unavailable: keep what we have
                log.exception("could not check the collaborative models")
            finally:
                self._last_check = time.monotonic()

    def warm_start(self) -> None:
        """The warm start's step: ``ensure_current``, and when this process began a cold
        shop's first training inline, its end too (the next-item model, in the background).
        Until then /health/ready says not ready, so no request shares the CPU with it.

        Only the inline path waits: a shop of at most ``inline_train_below`` events, seconds
        of training; a larger shop's first training goes on while the process serves. And
        never more than ``warm_wait_seconds``. A server-mode API process trains no next-item
        model and never waits for the worker's."""
        self.ensure_current()
        first = self._first_training
        if first is None:
            return
        first.join(self.warm_wait_seconds)
        if first.is_alive():
            log.warning(
                "warm start: the first training still runs after %.0f s; serving meanwhile",
                self.warm_wait_seconds,
            )

    def _check(self) -> None:
        if self.store.current_unchecked() is not None:
            # A newer version loads beside the requests, which keep the current one meanwhile:
            # reading the models takes a while at 100k products, and every request waited on
            # this check for it (server mode, open loop: p99 4.1 s and 39 requests shed as the
            # API processes picked up the worker's version, when the load imported torch).
            if self._unloaded_version() is not None:
                self._load_in_background()
            return
        if self._load_newest():
            return
        if not self.auto_train:
            return
        pending = self.new_events()
        if not pending:
            return
        if pending > self.inline_train_below:
            if self.background_training:
                self._start_background(self._train_if_free)
            else:
                log.info(
                    "no collaborative models yet: the worker trains the first (%d events)",
                    pending,
                )
            return
        # A small shop trains in well under a second: do it now, deterministically, unless
        # another process is training; then its version is loaded when it saves one (bounded:
        # requests wait on this check).
        held = self.lock.acquire(
            self.inline_wait_seconds,
            give_up=lambda: self._stop.is_set() or self._unloaded_version() is not None,
        )
        if held is None:
            if not self._load_newest():
                log.info(
                    "another process is training (%s); serving without collaborative models "
                    "until it saves them",
                    self.lock.holder(),
                )
            return
        try:
            if self._load_newest():  # saved while this process waited
                held.release()
                return
            # The next-item model takes seconds: it follows in the background (with the rest),
            # in the same training under the same lock.
            report = self._train(reason="startup", next_item=False)
        except BaseException:
            held.release()
            raise
        if report.next_item_deferred and self.background_training:
            self._first_training = self._start_background(lambda: self._train_holding(held))
            if self._first_training is not None:
                return  # the thread releases the lock when the training ends
        held.release()

    def _unloaded_version(self) -> ModelVersion | None:
        """The newest saved version, when this process serves another one."""
        latest = self.latest_version()
        current = self.store.current_unchecked()
        if latest is None or (current is not None and current.version == latest.version):
            return None
        return latest if self.model_path(latest.version).exists() else None

    def _load_newest(self) -> bool:
        latest = self._unloaded_version()
        if latest is None:
            return False
        self.store.set(load_models(self.model_path(latest.version)))
        log.info("loaded collaborative models %s", latest.version)
        return True

    def _load_in_background(self) -> None:
        with self._flag_lock:
            if self._loader is not None and self._loader.is_alive():
                return
            self._loader = threading.Thread(target=self._load_logged, name="cf-load", daemon=True)
            self._loader.start()

    def _load_logged(self) -> None:
        try:
            self._load_newest()
        except Exception:  # the next check tries again; the current models keep serving
            log.exception("could not load the newest collaborative models")

    def _start_background(self, work: Callable[[], object]) -> threading.Thread | None:
        with self._flag_lock:
            if self._training:
                return None
            self._training = True
        thread = threading.Thread(
            target=self._run_background, args=(work,), name="cf-train", daemon=True
        )
        self._thread = thread
        thread.start()
        return thread

    def _run_background(self, work: Callable[[], object]) -> None:
        lower_this_thread()  # requests (and the worker's events) first
        try:
            work()
        except TrainingBusy as exc:
            log.info("not training here: %s; its version is loaded when saved", exc)
        except TrainingStopped:
            log.info("background training stopped: the service is closing")
        except Exception:
            log.exception("background training failed; recommending without CF for now")
        finally:
            self._training = False

    def _train_holding(self, held: HeldLock) -> None:
        with held:
            self._train(reason="startup")

    def _train_if_free(self) -> None:
        with self._acquire(0):
            if not self._load_newest():
                self._train(reason="startup")

    def complete_in_background(self) -> None:
        """The worker's start in server mode, where the API processes fit no next-item model:
        in a background thread (events go on meanwhile), a full version when the newest has
        no next-item model and the shop has the sequences for one; when none exists, the
        quick models first (saved at once) and then the full version, under one lock."""
        self._start_background(self._complete)

    def _complete(self) -> None:
        if self._complete_already():
            return
        with self._acquire(None):  # an API process's inline training first; then look again
            if self._complete_already():
                return
            latest = self.latest_version()
            history = self._read(self.snapshots.get())
            if not history.triples:
                return  # nothing to train on yet: the first retrain will
            if latest is None:
                # The API processes wait (bounded) for a first version rather than serve
                # without one: the quick models first, as their own inline training would.
                report = self._train(reason="worker start", next_item=False, history=history)
                if report.next_item_deferred:
                    self._train(reason="worker start")  # with what came in meanwhile
            elif self._enough_sequences(history.usable):  # else the newest is all it can have
                self._train(reason="worker start", history=history)

    def _complete_already(self) -> bool:
        latest = self.latest_version()
        return latest is not None and (not self.next_item or "next_item" in latest.kinds)

    def close(self, timeout: float = 10.0) -> None:
        """Stop training (the next-item fit stops between batches; nothing half-trained is
        saved) and wait for the background thread: a torch thread still training at
        interpreter exit aborts the process ("terminate called without an active exception").
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("background training still running after %.0f s", timeout)

    def model_path(self, version: str) -> Path:
        return self.models_dir / f"cf-{version}.npz"

    @property
    def training(self) -> bool:
        return self._training


def _event_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Interaction)).one())
