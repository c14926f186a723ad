"""The real Chroma (embedded, in a temporary folder), the indexer and the search service."""

from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from backend.jobs.indexing import Indexer
from backend.recommender.embedder import content_hash, product_text
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.recommender.strategies.base import CandidateFilter
from backend.recommender.vector_store import VectorRecord, VectorStore
from backend.services.search import SearchService

from .conftest import CATALOG, EARBUDS, HEADPHONES, KETTLE, SKILLET, SPEAKER
from .fakes import FakeEmbedder


@pytest.fixture
def store(tmp_path) -> VectorStore:
    return VectorStore.open(path=tmp_path / "chroma")


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder(dim=1024)


def test_store_round_trip_cosine_and_metadata(store):
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    vectors = np.array([[1, 0, 0], [0.6, 0.8, 0]], dtype=np.float32)
    store.upsert(
        [
            VectorRecord(a, vectors[0], "Kitchen", 10.0, True, "h1"),
            VectorRecord(b, vectors[1], "Home", 20.0, False, "h2"),
        ]
    )
    assert store.count() == 2
    hits = store.query(np.array([1, 0, 0], dtype=np.float32), 2)
    assert [h.product_id for h in hits] == [a, b]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert hits[1].similarity == pytest.approx(0.6, abs=1e-5)  # cosine space
    only_home = store.query(np.array([1, 0, 0], dtype=np.float32), 2, where={"category": "Home"})
    assert [h.product_id for h in only_home] == [b]
    assert store.hashes() == {a: "h1", b: "h2"}
    assert store.metadata_of([b])[b]["in_stock"] is False
    ids, matrix = store.embeddings()
    assert matrix[ids.index(b)] == pytest.approx(vectors[1])
    store.delete([a])
    assert store.count() == 1


def test_indexer_skips_unchanged_text_and_follows_changes(store, embedder):
    indexer = Indexer(embedder=embedder, store=store, batch_size=3)
    first = indexer.rebuild(CATALOG)
    assert (first.encoded, first.unchanged, first.deleted) == (8, 0, 0)
    assert embedder.calls == [3, 3, 2]  # batches of 3, written while the next encodes
    again = indexer.rebuild(CATALOG)
    assert (again.encoded, again.unchanged) == (0, 8)
    cheaper = replace(SKILLET, price=Decimal("5.00"))
    renamed = replace(KETTLE, name="Gooseneck Kettle")
    changed = [cheaper, renamed, *[p for p in CATALOG if p not in (SKILLET, KETTLE)]]
    report = indexer.sync([cheaper, renamed])
    assert (report.encoded, report.metadata_only) == (1, 1)
    assert store.metadata_of([SKILLET.id])[SKILLET.id]["price"] == 5.0
    stored_hash = store.hashes()[KETTLE.id]
    text = product_text(renamed.name, renamed.category, renamed.tags, renamed.description)
    assert stored_hash == content_hash(text, embedder.model_id)
    gone = indexer.rebuild(changed[:-1])  # one product deleted from the catalog
    assert gone.deleted == 1 and store.count() == 7


def _search(store, embedder, path: str) -> SearchService:
    snapshot = CatalogSnapshot.build(CATALOG, {}, version="s")
    if path != "overfetch":  # "overfetch": no matrix in memory, Chroma only
        ids, vectors = store.embeddings()
        snapshot.attach_embeddings(ids, vectors)
    manager = SnapshotManager(load=lambda: snapshot, version=lambda: "s")
    return SearchService(
        snapshots=manager, embedder=embedder, store=None if path == "no-chroma" else store
    )


@pytest.mark.parametrize("path", ["matrix", "overfetch", "no-chroma"])
def test_similar_and_search_with_filters(store, embedder, path):
    Indexer(embedder=embedder, store=store).rebuild(CATALOG)
    search = _search(store, embedder, path)
    snapshot = search.snapshots.get()
    similar = search.similar(HEADPHONES.id, top_n=2, filters=CandidateFilter())
    assert [snapshot.products[h.index] for h in similar] == [EARBUDS, SPEAKER]
    assert similar[0].similarity == pytest.approx(5 / (13**0.5 * 6**0.5), abs=0.01)
    kitchen = search.similar(HEADPHONES.id, top_n=5, filters=CandidateFilter(category="Kitchen"))
    assert {snapshot.products[h.index].category for h in kitchen} == {"Kitchen"}
    in_stock = search.search("electric kettle", top_n=3, filters=CandidateFilter(in_stock=True))
    assert KETTLE.id in {snapshot.products[h.index].id for h in in_stock}
    found = search.search("cast iron skillet", top_n=1, filters=CandidateFilter(max_price=50))
    assert snapshot.products[found[0].index] == SKILLET
    assert search.search("skillet", top_n=3, filters=CandidateFilter(max_price=1)) == []
