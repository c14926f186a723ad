"""Chat retrieval really uses the catalog's embeddings: text relevance, the shopper's profile
and "more like this" — tested with fake embedders whose meaning disagrees with the words.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.adapters import Adapters, default_adapters
from backend.chat.ranking import (
    ChatRetriever,
    KeywordRanker,
    RetrievalRequest,
    SemanticRanker,
    TextRanker,
)
from backend.chat.state import ChatFilters, SimilarTo
from backend.chat.vocabulary import ChatVocabulary
from backend.config import Settings
from backend.db import crud
from backend.main import create_app
from backend.recommender.profile import InteractionRecord, weighted_profile
from backend.recommender.snapshot import CatalogSnapshot, ProductRecord
from backend.wiring import Components
from tests.factories import Shop, build_shop
from tests.recommender.fakes import FakeEmbedder

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def product(name: str, tags: Sequence[str], description: str = "") -> ProductRecord:
    return ProductRecord(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"semantic:{name}"),
        name=name,
        category="Home",
        price=Decimal("30.00"),
        quantity=5,
        tags=tuple(tags),
        description=description,
    )


BLANKET = product("Cosy Throw", ["home", "soft"])  # the meaning, no matching word
COVER = product("Sofa Cover", ["home", "soft"], "Washable, snuggle proof.")  # the word only
RUG = product("Wool Rug", ["home", "soft"])
MUG = product("Tea Mug", ["home", "soft"])
CATALOG = [COVER, RUG, MUG, BLANKET]  # the meaning's product is last: ties would not favour it


class AxisEmbedder:
    """Every query means 'blanket' (axis 0); the catalog's vectors are set by the test."""

    dim = 4
    model_id = "axis"

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        out[:, 0] = 1.0
        return out


def snapshot(vectors: dict[ProductRecord, list[float]] | None) -> CatalogSnapshot:
    snap = CatalogSnapshot.build(CATALOG, version="semantic")
    if vectors is not None:
        matrix = np.zeros((len(CATALOG), 4), dtype=np.float32)
        for p, v in vectors.items():
            matrix[snap.index[p.id]] = np.asarray(v) / np.linalg.norm(v)
        snap.embeddings = matrix
    return snap


VECTORS = {
    BLANKET: [1.0, 0.1, 0.0, 0.0],
    COVER: [0.0, 1.0, 0.0, 0.0],
    RUG: [0.2, 0.0, 1.0, 0.0],
    MUG: [0.05, 0.0, 0.0, 1.0],  # barely related: above 0, far below the best match
}


def names(snap: CatalogSnapshot, ranker: TextRanker, request: RetrievalRequest) -> list[str]:
    hits = ChatRetriever(ranker).retrieve(snap, ChatVocabulary.build(snap), request).items
    return [snap.products[h.index].name for h in hits]


def test_meaning_beats_a_stray_keyword_when_the_catalog_has_vectors() -> None:
    request = RetrievalRequest(filters=ChatFilters(query="snuggle"), top_n=4)
    snap = snapshot(VECTORS)
    assert names(snap, KeywordRanker(), request)[0] == "Sofa Cover"
    semantic = SemanticRanker(AxisEmbedder())
    assert names(snap, semantic, request)[:2] == ["Cosy Throw", "Sofa Cover"]
    hits = ChatRetriever(semantic).retrieve(snap, ChatVocabulary.build(snap), request).items
    details = {snap.products[h.index].name: h.evidence.sources[0].detail for h in hits[:2]}
    assert details == {
        "Cosy Throw": "close in meaning to what you described",
        "Sofa Cover": "matches your words: snuggle",
    }


def test_without_vectors_the_same_ranker_falls_back_to_keywords() -> None:
    request = RetrievalRequest(filters=ChatFilters(query="snuggle"), top_n=4)
    assert names(snapshot(None), SemanticRanker(AxisEmbedder()), request)[0] == "Sofa Cover"


def test_price_sorting_keeps_only_the_relevant_semantic_matches() -> None:
    request = RetrievalRequest(filters=ChatFilters(query="snuggle", sort="price_asc"), top_n=4)
    got = names(snapshot(VECTORS), SemanticRanker(AxisEmbedder()), request)
    assert "Tea Mug" not in got  # unrelated in meaning and in words: not "cheapest relevant"


def test_the_profile_boost_follows_the_meaning_of_what_the_shopper_liked() -> None:
    """Same category and tags everywhere: only the vectors can tell the rug is like the
    throw the shopper liked."""
    snap = snapshot(VECTORS)
    liked = [InteractionRecord(action="wishlist", created_at=NOW, product_id=BLANKET.id)]
    profile = weighted_profile(liked, snap, now=NOW, half_life_days=30)
    request = RetrievalRequest(filters=ChatFilters(), top_n=3, profile=profile)
    ranker = KeywordRanker()
    assert names(snap, ranker, request)[:2] == ["Cosy Throw", "Wool Rug"]
    assert names(snapshot(None), ranker, request)[:2] == ["Sofa Cover", "Wool Rug"]  # ties


def test_more_like_this_uses_the_vectors() -> None:
    anchor = SimilarTo(product_id=BLANKET.id, name=BLANKET.name)
    request = RetrievalRequest(filters=ChatFilters(similar_to=anchor), top_n=3)
    assert names(snapshot(VECTORS), KeywordRanker(), request)[0] == "Wool Rug"
    assert names(snapshot(None), KeywordRanker(), request)[0] == "Sofa Cover"  # ties only


# --- the wiring: POST /chat over the indexed shop -------------------------------------------


@pytest.fixture
def adapters(settings: Settings) -> Adapters:
    """A fake embedder for which 'tunes' means 'audio'."""
    fake = FakeEmbedder(dim=1024, synonyms={"tunes": "audio"})
    return dataclasses.replace(default_adapters(settings), embedder=fake)


@pytest.fixture
def indexed_chat(db, components: Components) -> Iterator[tuple[TestClient, Shop]]:
    """The tiny shop indexed, so the chat ranks by the vectors."""
    shop = build_shop(db)
    with Session(components.db) as session:
        components.indexer.rebuild(crud.load_catalog(session=session))
    components.snapshots.invalidate()
    with TestClient(create_app(components=components)) as client:
        yield client, shop


def test_chat_finds_by_meaning_over_the_vector_index(indexed_chat) -> None:
    api, _ = indexed_chat
    body = api.post("/chat", json={"message": "something for my tunes"}).json()
    assert body["filters"]["query"] == "tunes"
    names = [p["name"] for p in body["products"]]
    assert set(names[:3]) == {"Studio Headphones", "Pocket Speaker", "Wireless Earbuds"}
    assert not any("Nothing in the shop mentions" in n for n in body["notes"])
    reason = body["products"][0]["evidence"]["sources"][0]
    assert reason["name"] == "query" and reason["detail"].startswith("close in meaning")


def test_a_known_shoppers_profile_boosts_the_chat(indexed_chat) -> None:
    api, shop = indexed_chat
    guest = api.post("/chat", json={"message": "kitchen"}).json()
    dave = shop.users["dave"]  # viewed the skillet three times, clicked the kettle twice
    known = api.post("/chat", json={"message": "kitchen", "user_id": str(dave.id)}).json()
    assert [p["name"] for p in known["products"]][0] == "Cast Iron Skillet"
    sources = {s["name"] for s in known["products"][0]["evidence"]["sources"]}
    assert "profile" in sources
    assert all(s["name"] != "profile" for p in guest["products"] for s in p["evidence"]["sources"])
