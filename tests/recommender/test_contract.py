"""One contract, every strategy: the same tiny shop, the same questions, known answers.

Training data for the collaborative models: five shoppers bought the headphones with the
earbuds, three the skillet with the kettle, one the speaker with the case. Asked about a user
who bought the headphones, every personalised strategy must put the earbuds first (the rule
strategies by category and tag, the embedding one by text, the collaborative ones by
co-purchase), and popularity must answer the desk lamp.
"""

from __future__ import annotations

import numpy as np
import pytest

from backend.recommender.cf import CFParams, ModelStore, train, user_items_matrix
from backend.recommender.embedder import product_text
from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies import CandidateFilter, RecommendRequest, default_strategies

from .conftest import (
    CASE,
    CATALOG,
    DESK_LAMP,
    EARBUDS,
    HEADPHONES,
    KETTLE,
    NOW,
    POPULARITY,
    SKILLET,
    SPEAKER,
    event,
)
from .fakes import FakeEmbedder

BASKETS = [[HEADPHONES, EARBUDS]] * 5 + [[SKILLET, KETTLE]] * 3 + [[SPEAKER, CASE]]
TINY_CF = CFParams(knn_neighbours=10, als_factors=4, als_iterations=30, ease_lambda=1.0,
                   ease_content_alpha=1.0)  # fmt: skip
ALL = [
    "rules",
    "weighted",
    "popularity",
    "embedding",
    "itemknn-bm25",
    "itemknn-cosine",
    "als",
    "ease",
    "hybrid",
]
EXPECTED_FIRST = {name: EARBUDS for name in ALL} | {"popularity": DESK_LAMP}


@pytest.fixture(scope="module")
def shop() -> tuple[CatalogSnapshot, ModelStore]:
    snapshot = CatalogSnapshot.build(CATALOG, POPULARITY, version="contract")
    texts = [product_text(p.name, p.category, p.tags, p.description) for p in CATALOG]
    snapshot.embeddings = FakeEmbedder(dim=1024).encode(texts)
    rows = [(u, snapshot.index[p.id], 6.0) for u, basket in enumerate(BASKETS) for p in basket]
    matrix = user_items_matrix(rows, len(BASKETS), len(CATALOG))
    models = train(
        matrix, [p.id for p in CATALOG], params=TINY_CF, item_embeddings=snapshot.embeddings
    )
    return snapshot, ModelStore(models)


@pytest.fixture(scope="module")
def strategies(shop):
    return default_strategies(half_life_days=30.0, models=shop[1])


def ask(strategy, snapshot, history, top_n=3, **filters):
    request = RecommendRequest(
        interactions=history, top_n=top_n, now=NOW, filters=CandidateFilter(**filters)
    )
    return strategy.recommend(snapshot, request)


def test_every_strategy_is_registered(strategies):
    assert sorted(strategies) == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_known_first_answer(name, shop, strategies):
    snapshot, _ = shop
    recs = ask(strategies[name], snapshot, [event(HEADPHONES, "purchase")])
    assert snapshot.products[recs[0].index] == EXPECTED_FIRST[name]
    assert recs[0].evidence.strategy == name


@pytest.mark.parametrize("name", ALL)
def test_list_shape_exclusions_and_order(name, shop, strategies):
    snapshot, _ = shop
    history = [event(HEADPHONES, "purchase"), event(SPEAKER, "view", days_ago=2)]
    recs = ask(strategies[name], snapshot, history, top_n=5)
    indexes = [r.index for r in recs]
    assert len(recs) == 5 and len(set(indexes)) == 5
    assert not {snapshot.index[HEADPHONES.id], snapshot.index[SPEAKER.id]} & set(indexes)
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True)
    for r in recs:
        shares = [s.share for s in r.evidence.sources]
        assert shares and abs(sum(shares) - 1.0) < 1e-3
        assert r.evidence.popularity_rank >= 1


@pytest.mark.parametrize("name", ALL)
def test_cold_start_is_most_popular(name, shop, strategies):
    snapshot, _ = shop
    recs = ask(strategies[name], snapshot, [])
    assert [snapshot.products[r.index] for r in recs] == [DESK_LAMP, SKILLET, KETTLE]
    assert all(r.evidence.sources[0].name == "popularity" for r in recs)


@pytest.mark.parametrize("name", ALL)
def test_filters_hold(name, shop, strategies):
    snapshot, _ = shop
    history = [event(HEADPHONES, "purchase")]
    recs = ask(strategies[name], snapshot, history, top_n=8, category="Kitchen")
    assert recs and {snapshot.products[r.index].category for r in recs} == {"Kitchen"}
    cheap = ask(strategies[name], snapshot, history, top_n=8, max_price=9.0)
    assert cheap == []


@pytest.mark.parametrize("name", ALL)
def test_everything_seen_leaves_nothing(name, shop, strategies):
    snapshot, _ = shop
    assert ask(strategies[name], snapshot, [event(p) for p in CATALOG]) == []


def test_strategies_are_deterministic(shop, strategies):
    snapshot, _ = shop
    history = [event(HEADPHONES, "purchase"), event(CASE, "view")]
    for name in ALL:
        first = ask(strategies[name], snapshot, history, top_n=5)
        again = ask(strategies[name], snapshot, history, top_n=5)
        assert [r.index for r in first] == [r.index for r in again]
        assert np.allclose([r.score for r in first], [r.score for r in again])


@pytest.mark.parametrize("name", [n for n in ALL if n not in ("rules", "weighted", "popularity")])
def test_rank_matches_recommend(name, shop, strategies):
    """The evaluation ranks without evidence; it must rank exactly as ``recommend`` does."""
    snapshot, _ = shop
    for history in ([], [event(HEADPHONES, "purchase")], [event(SKILLET), event(CASE)]):
        request = RecommendRequest(interactions=history, top_n=6, now=NOW)
        expected = [r.index for r in strategies[name].recommend(snapshot, request)]
        assert strategies[name].rank(snapshot, request).tolist() == expected
