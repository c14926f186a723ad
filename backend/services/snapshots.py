"""The engine snapshot's loader: the catalog from the database, the vectors from the index."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.db import crud
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.recommender.vector_store import COLLECTION
from backend.services.vectors import VectorIndex


def snapshot_manager(db: Engine, vectors: VectorIndex | None = None) -> SnapshotManager:
    """Without ``vectors`` (tests, `shopwise segments`) the snapshot holds no embeddings."""

    def current(session: Session) -> str:
        """The catalog's version and, with vectors, the last index run's: a `shopwise
        index` after a lost or corrupt index brings the vectors back without a restart."""
        v = crud.catalog_version(session=session)
        if vectors is not None:
            built = crud.last_index_run(session=session, collection=COLLECTION)
            v += f"|index:{built.isoformat() if built is not None else '-'}"
        return v

    def version() -> str:
        with Session(db) as session:
            return current(session)

    def load() -> CatalogSnapshot:
        with Session(db) as session:
            v = current(session)
            products = crud.load_catalog(session=session)
            counts = crud.interaction_counts(session=session)
        snapshot = CatalogSnapshot.build(products, counts, version=v)
        if vectors is not None:
            vectors.attach_embeddings(snapshot)
        return snapshot

    return SnapshotManager(load=load, version=version)
