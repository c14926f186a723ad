"""The product vectors as the engine sees them: copied into each new snapshot, and their health.

The vector store is the only home of the vectors; the engine snapshot holds a copy so that a
recommendation never waits for Chroma. This module decides when that copy can be made and
says, for /health, whether vector answers are degraded and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from backend.infra.stream import StreamStatus
from backend.jobs.indexing import index_state
from backend.recommender.cf import CFModels, ModelStore
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.recommender.strategies.sources import reduced_embeddings
from backend.recommender.vector_store import VectorStore, VectorStoreError


class VectorIndex:
    def __init__(self, *, db: Engine, store: VectorStore) -> None:
        self.db = db
        self.store = store

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
        path = self.store.path  # None: a Chroma server, which holds the index itself
        if path is None or self.store.connected:
            return True
        return path.exists() and any(path.iterdir())

    def status(self, snapshot: CatalogSnapshot | None, models: CFModels | None) -> StreamStatus:
        """The vector index and model versions (never built is not an error)."""
        state = index_state(self.db)
        in_memory = (
            int((snapshot.embeddings != 0).any(axis=1).sum())
            if snapshot is not None and snapshot.embeddings is not None
            else 0
        )
        cf = f"CF models {models.version}" if models else "no CF models yet"
        # A saved next-item model that would not load: the hybrid answers without that source.
        model_problem = models.next_item_error if models else None
        if state is None:
            detail = f"vector index not built yet (run `shopwise index`); {cf}"
            return _status(model_problem, detail)
        last = state.last_run
        detail = (
            f"{state.vectors} vectors ({state.model_id}), {in_memory} in memory; last index "
            f"{state.last_run_at:%Y-%m-%d %H:%M}: {int(last.get('encoded', 0))} embedded, "
            f"{int(last.get('unchanged', 0))} unchanged; {cf}"
        )
        self.store.expected_vectors = state.vectors
        problem = self._problem(state.vectors, in_memory, snapshot is not None)
        return _status(problem or model_problem, detail)

    def _problem(self, expected: int, in_memory: int, loaded: bool) -> str | None:
        """Why vector answers are degraded, if they are (checked without touching Chroma)."""
        if self.store.folder_missing:
            return f"vector index folder {self.store.path} is missing: run `shopwise index`"
        if self.store.last_error:
            try:
                self.store.count()  # one probe: clears the error once Chroma answers again
            except VectorStoreError:
                return f"vector store failing ({self.store.last_error})"
        if expected > 0 and in_memory == 0 and loaded:
            return "no vectors in memory: recommendations without content similarity"
        return None


@dataclass(frozen=True)
class VectorHealth:
    """The index's status against the snapshot in memory and the current models (/health)."""

    index: VectorIndex
    snapshots: SnapshotManager
    models: ModelStore

    def status(self) -> StreamStatus:
        return self.index.status(self.snapshots.loaded, self.models.current_unchecked())


def _status(problem: str | None, detail: str) -> StreamStatus:
    """Degraded, with the problem first, when there is one."""
    if problem:
        return StreamStatus(backend="chroma", status="degraded", detail=f"{problem}; {detail}")
    return StreamStatus(backend="chroma", status="ok", detail=detail)
