"""The retrieval side of a running Shopwise, built once from settings.

Embedder, vector store, collaborative models, indexer, search and catalog writes. Nothing
here connects or loads a model when built: Chroma opens on first use, the sentence model
loads on the first encode, and the collaborative models load (or train in the background)
on the first recommendation that needs them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from backend.config import Settings
from backend.infra.stream import StreamStatus
from backend.jobs.indexing import Indexer, index_state
from backend.jobs.training import TrainingService
from backend.observability.dependencies import DependencyMonitor
from backend.recommender.cf import CFParams, ModelStore
from backend.recommender.embedder import Embedder, SentenceTransformerEmbedder
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.recommender.strategies.blend import BlendConfig
from backend.recommender.strategies.sources import reduced_embeddings
from backend.recommender.vector_store import VectorStore, VectorStoreError
from backend.services.catalog import CatalogService
from backend.services.search import SearchService

log = logging.getLogger(__name__)


@dataclass
class Retrieval:
    settings: Settings
    db: Engine
    embedder: Embedder
    store: VectorStore
    models: ModelStore
    hybrid_config: BlendConfig
    params: CFParams
    indexer: Indexer
    snapshots: SnapshotManager | None = None
    training: TrainingService | None = None
    search: SearchService | None = None
    catalog: CatalogService | None = None

    def bind(self, snapshots: SnapshotManager) -> None:
        """Second half of the wiring: the services that need the snapshot manager."""
        self.snapshots = snapshots
        self.training = TrainingService(
            db=self.db,
            snapshots=snapshots,
            store=self.models,
            params=self.params,
            models_dir=self.settings.data_dir / "models",
            auto_train=self.settings.cf_auto_train,
        )
        self.models.on_access = self.training.ensure_current
        self.search = SearchService(snapshots=snapshots, embedder=self.embedder, store=self.store)
        self.catalog = CatalogService(db=self.db, snapshots=snapshots, indexer=self.indexer)

    def attach_embeddings(self, snapshot: CatalogSnapshot) -> None:
        """Copy the stored vectors into the new snapshot (skipped when nothing is indexed).

        A lost or unreadable index leaves the snapshot without vectors: recommendations go
        on without content similarity; the store has reported the failure (logged once).
        """
        state = index_state(self.db)
        self.store.expected_vectors = state.vectors if state is not None else 0
        if not self._index_exists() and not self.store.folder_missing:
            return
        try:
            ids, vectors = self.store.embeddings()
        except VectorStoreError:  # serve without vectors rather than without a catalog
            return
        snapshot.attach_embeddings(ids, vectors)
        reduced_embeddings(snapshot)  # large catalogs: built here, off the request path

    def _index_exists(self) -> bool:
        if self.settings.chroma_url is not None or self.store.connected:
            return True
        path = self.settings.chroma_path
        return path is not None and path.exists() and any(path.iterdir())

    def retrain(self) -> object:
        """The event worker's hook when enough new events arrived."""
        assert self.training is not None
        return self.training.train_now(reason="threshold")

    def status(self) -> StreamStatus:
        """The vector index and model versions for /health (never built is not an error)."""
        state = index_state(self.db)
        snapshot = self.snapshots.loaded if self.snapshots else None
        in_memory = (
            int((snapshot.embeddings != 0).any(axis=1).sum())
            if snapshot is not None and snapshot.embeddings is not None
            else 0
        )
        models = self.models.current_unchecked()
        cf = f"CF models {models.version}" if models else "no CF models yet"
        if state is None:
            detail = f"vector index not built yet (run `shopwise index`); {cf}"
            return StreamStatus(backend="chroma", status="ok", detail=detail)
        last = state.last_run
        detail = (
            f"{state.vectors} vectors ({state.model_id}), {in_memory} in memory; last index "
            f"{state.last_run_at:%Y-%m-%d %H:%M}: {int(last.get('encoded', 0))} embedded, "
            f"{int(last.get('unchanged', 0))} unchanged; {cf}"
        )
        self.store.expected_vectors = state.vectors
        problem = self._problem(state.vectors, in_memory)
        if problem:
            return StreamStatus(backend="chroma", status="degraded", detail=f"{problem}; {detail}")
        return StreamStatus(backend="chroma", status="ok", detail=detail)

    def _problem(self, expected: int, in_memory: int) -> str | None:
        """Why vector answers are degraded, if they are (checked without touching Chroma)."""
        if self.store.folder_missing:
            return f"vector index folder {self.store.path} is missing: run `shopwise index`"
        if self.store.last_error:
            try:
                self.store.count()  # one probe: clears the error once Chroma answers again
            except VectorStoreError:
                return f"vector store failing ({self.store.last_error})"
        if expected > 0 and in_memory == 0 and self.snapshots and self.snapshots.loaded:
            return "no vectors in memory: recommendations without content similarity"
        return None


def build_retrieval(
    settings: Settings, db: Engine, monitor: DependencyMonitor | None = None
) -> Retrieval:
    embedder = SentenceTransformerEmbedder(settings.embedding_model_path)
    store = VectorStore.open(
        path=settings.chroma_path,
        url=str(settings.chroma_url) if settings.chroma_url else None,
    )
    store.monitor = monitor
    config = BlendConfig(
        weights={
            "content": settings.hybrid_content_weight,
            "cf": settings.hybrid_cf_weight,
            "rules": settings.hybrid_rules_weight,
            "popularity": settings.hybrid_popularity_weight,
            "sequence": settings.hybrid_sequence_weight,
        },
        recency_decay=settings.hybrid_recency_decay,
        half_life_days=settings.interaction_half_life_days,
        mmr_lambda=settings.hybrid_mmr_lambda,
        max_per_category=settings.hybrid_max_per_category,
    )
    params = CFParams(
        ease_lambda=settings.ease_lambda, ease_content_alpha=settings.ease_content_alpha
    )
    return Retrieval(
        settings=settings,
        db=db,
        embedder=embedder,
        store=store,
        models=ModelStore(),
        hybrid_config=config,
        params=params,
        indexer=Indexer(
            embedder=embedder, store=store, db=db, batch_size=settings.embedding_batch_size * 4
        ),
    )
