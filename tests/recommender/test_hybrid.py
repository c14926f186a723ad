"""The hybrid's blend, evidence and diversity on the tiny shop, with known answers."""

from __future__ import annotations

import pytest

from backend.recommender.strategies import BlendConfig, BlendStrategy, RecommendRequest

from .conftest import CASE, EARBUDS, HEADPHONES, NOW, SPEAKER, event
from .test_contract import shop  # noqa: F401  (the module-scoped tiny shop with models)


def ask(strategy, snapshot, history, top_n=3):
    return strategy.recommend(
        snapshot, RecommendRequest(interactions=history, top_n=top_n, now=NOW)
    )


def test_evidence_lists_every_source_with_its_share(shop):  # noqa: F811
    snapshot, models = shop
    strategy = BlendStrategy(
        "hybrid",
        BlendConfig(weights={"content": 0.4, "cf": 0.6, "popularity": 0.1}),
        models,
    )
    first = ask(strategy, snapshot, [event(HEADPHONES, "purchase")])[0]
    assert snapshot.products[first.index] == EARBUDS
    shares = {s.name: s.share for s in first.evidence.sources}
    assert set(shares) == {"content", "cf", "popularity"}
    assert shares["cf"] > shares["content"] > shares["popularity"] > 0
    assert abs(sum(shares.values()) - 1.0) < 1e-3
    # CF and content both normalise to 1 for the best item: shares follow the weights.
    assert shares["cf"] == pytest.approx(0.6 / (0.4 + 0.6 + first_popularity(snapshot)), abs=0.02)
    assert first.evidence.similar_to is not None
    assert first.evidence.similar_to.product_name == "Studio Headphones"
    assert 0.5 < first.evidence.similar_to.similarity < 0.7  # 5 shared words of 13 and 6
    [co] = first.evidence.co_interactions
    assert (co.product_name, co.count) == ("Studio Headphones", 5)
    assert "EASE" in next(s.detail for s in first.evidence.sources if s.name == "cf")


def first_popularity(snapshot):
    import numpy as np

    logs = np.log1p(snapshot.popularity)
    return 0.1 * logs[snapshot.index[EARBUDS.id]] / logs.max()


def test_weights_move_the_answer(shop):  # noqa: F811
    snapshot, models = shop
    history = [event(CASE, "purchase")]  # CF: the speaker (bought with the case)
    cf_only = BlendStrategy("h", BlendConfig(weights={"cf": 1.0}), models)
    assert snapshot.products[ask(cf_only, snapshot, history)[0].index] == SPEAKER


def test_recent_items_weigh_more(shop):  # noqa: F811
    snapshot, models = shop
    content = BlendStrategy("e", BlendConfig(weights={"content": 1.0}, recency_decay=0.2), models)
    older_audio = [event(HEADPHONES, "view", days_ago=5), event(CASE, "view", days_ago=1)]
    top = snapshot.products[ask(content, snapshot, older_audio, top_n=1)[0].index]
    assert top.category == "Accessories"  # the charger: closest to the newest item, the case


def test_category_cap_and_mmr_diversify(shop):  # noqa: F811
    snapshot, models = shop
    history = [event(HEADPHONES, "purchase")]
    plain = BlendStrategy("h", BlendConfig(weights={"content": 1.0}), models)
    capped = BlendStrategy(
        "h", BlendConfig(weights={"content": 1.0}, max_per_category=1, mmr_lambda=0.7), models
    )
    plain_categories = [snapshot.products[r.index].category for r in ask(plain, snapshot, history)]
    capped_categories = [
        snapshot.products[r.index].category for r in ask(capped, snapshot, history)
    ]
    assert plain_categories.count("Electronics") == 2
    assert len(set(capped_categories)) == len(capped_categories)


@pytest.mark.parametrize(
    "bad",
    [
        {"weights": {"magic": 1.0}},
        {"weights": {"cf": 0.0}},
        {"weights": {"cf": -1.0}},
        {"mmr_lambda": 0.0},
        {"recency_decay": 1.5},
    ],
)
def test_nonsense_configuration_fails_fast(bad):
    with pytest.raises(ValueError):
        BlendConfig(**bad)


def test_without_models_or_vectors_falls_back_to_popularity(snapshot):
    strategy = BlendStrategy("hybrid", BlendConfig(), None)
    recs = ask(strategy, snapshot, [event(HEADPHONES, "purchase")])
    assert [r.evidence.sources[0].name for r in recs] == ["popularity"] * 3


def test_large_catalogs_scan_a_reduced_matrix_and_rescore_exactly(monkeypatch):
    """Above REDUCE_ABOVE the content source scans a PCA-reduced matrix, then rescores the
    best candidates exactly: the top of the ranking is the exact one."""
    import uuid
    from decimal import Decimal

    import numpy as np

    from backend.recommender.snapshot import CatalogSnapshot, ProductRecord
    from backend.recommender.strategies import sources

    rng = np.random.default_rng(5)
    centres = rng.normal(size=(20, 64))
    vectors = centres[rng.integers(0, 20, 600)] + 0.3 * rng.normal(size=(600, 64))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    products = [
        ProductRecord(uuid.UUID(int=i + 1), f"p{i}", "c", Decimal(1), 1, ()) for i in range(600)
    ]
    snapshot = CatalogSnapshot.build(products, {}, version="big")
    snapshot.embeddings = vectors
    request = RecommendRequest(
        interactions=[event(products[i], "view", days_ago=i) for i in (3, 70, 140)],
        top_n=10,
        now=NOW,
    )
    history = sources.user_history(snapshot, request)
    exact = sources.content_scores(snapshot, history)
    monkeypatch.setattr(sources, "REDUCE_ABOVE", 100)
    monkeypatch.setattr(sources, "REDUCED_DIMS", 16)
    monkeypatch.setattr(sources, "EXACT_RESCORE", 50)
    approx = sources.content_scores(snapshot, history)
    assert "reduced_embeddings" in snapshot.derived
    top = np.argsort(-exact)[:20]
    assert np.array_equal(np.argsort(-approx)[:20], top)
    assert np.allclose(approx[top], exact[top], atol=1e-5)
