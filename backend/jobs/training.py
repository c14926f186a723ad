"""Training the collaborative models from the interactions table; versions are recorded.

``shopwise train`` and the event worker (after ``RETRAIN_THRESHOLD`` new events) call
``train_now``: it trains, saves the arrays under ``DATA_DIR/models`` and records a
``model_version`` row. It also fits the hybrid's ``next_item`` source, SASRec with the items'
text on the shoppers' ordered items, for a fixed number of epochs (a shop has no held-out
targets to stop on; the evaluation's early stopping chose ~10 on Amazon Scientific).
A serving process picks the newest version up by itself (a cheap check, rate-limited, on the
recommend path) and, when none exists yet, trains one in a background thread, so the API
starts fast and never trains inside a request.
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
from backend.recommender.cf import CFModels, CFParams, ModelStore, train, user_items_matrix
from backend.recommender.cf import load as load_models
from backend.recommender.cf import save as save_models
from backend.recommender.profile import DEFAULT_ACTION_WEIGHTS
from backend.recommender.snapshot import SnapshotManager

if TYPE_CHECKING:
    from backend.recommender.sequential import NextItemScorer, SeqParams

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


class TrainingService:
    """Keeps the collaborative models current: it owns their store, and every read of the
    store (``store.current()``) lets it load saved models or start a training first."""

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
    ) -> None:
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
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._training = False
        self._last_check = 0.0

    def train_now(
        self,
        *,
        reason: str = "manual",
        progress: Callable[[str], None] | None = None,
        next_item: bool = True,
    ) -> TrainReport:
        """Train, save and record a version; ``next_item=False`` leaves the sequential model
        out (the report's ``next_item_deferred`` says whether there was one to train)."""
        started = time.perf_counter()
        snapshot = self.snapshots.get()
        ids = [p.id for p in snapshot.products]
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
        matrix = user_items_matrix(triples, len(users), len(ids))
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
            sequences=sequences,
        )
        next_item_seconds = None
        enough = self._enough_sequences(sequences)
        if self.next_item and enough and next_item:
            models.next_item, next_item_seconds = self._fit_next_item(
                sequences, len(ids), text, progress
            )
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
            next_item_deferred=self.next_item and enough and not next_item,
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
                    events_seen=events_seen,
                    reason=reason,
                    seconds=seconds,
                )
            )
        log.info("collaborative models trained: %s", report)
        return report

    def _enough_sequences(self, sequences: list[list[int]]) -> bool:
        """Whether a sequential model has enough to learn from (says so in the log if not)."""
        if not self.next_item:
            return False
        usable = sum(1 for s in sequences if len(s) >= 2)
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
        sequences: list[list[int]],
        n_items: int,
        text: np.ndarray | None,
        progress: Callable[[str], None] | None,
    ) -> tuple[NextItemScorer, float]:
        """SASRec on the shoppers' ordered items (with the items' text when indexed)."""
        usable = sum(1 for s in sequences if len(s) >= 2)
        from backend.recommender import sequential  # torch: imported only to train

        params = replace(
            self.next_item_params or sequential.SeqParams(),
            text="add" if text is not None else "none",
        )
        if progress is not None:
            epochs = self.next_item_epochs
            progress(f"next-item model (SASRec, text={params.text}, {epochs} epochs)")
        model, info = sequential.fit(
            sequences,
            n_items,
            params,
            epochs=self.next_item_epochs,
            text=text.astype(np.float32) if text is not None else None,
            max_seconds=self.next_item_max_seconds,
        )
        scorer = sequential.NextItemScorer(model, params)
        log.info(
            "next-item model trained: %d sequences, %d items, %d epochs in %.1f s, %.1f MB",
            usable,
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
        """Load a newer saved version, or train a first one; rate-limited and cheap.

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
            except Exception:  # the database or the file is unavailable: keep what we have
                log.exception("could not check the collaborative models")
            finally:
                self._last_check = time.monotonic()

    def _check(self) -> None:
        latest = self.latest_version()
        current = self.store.current_unchecked()
        if latest is not None and (current is None or current.version != latest.version):
            path = self.model_path(latest.version)
            if path.exists():
                self.store.set(load_models(path))
                log.info("loaded collaborative models %s", latest.version)
                return
        if current is not None or not self.auto_train:
            return
        pending = self.new_events()
        if not pending:
            return
        if pending <= self.inline_train_below:
            # A small shop trains in well under a second: do it now, deterministically. The
            # next-item model takes seconds: it follows in the background (with the rest).
            report = self.train_now(reason="startup", next_item=False)
            if not report.next_item_deferred:
                return
        with self._lock:
            if self._training:
                return
            self._training = True
        threading.Thread(target=self._background_train, name="cf-train", daemon=True).start()

    def _background_train(self) -> None:
        try:
            self.train_now(reason="startup")
        except Exception:
            log.exception("background training failed; recommending without CF for now")
        finally:
            self._training = False

    def model_path(self, version: str) -> Path:
        return self.models_dir / f"cf-{version}.npz"

    @property
    def training(self) -> bool:
        return self._training


def _event_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Interaction)).one())
