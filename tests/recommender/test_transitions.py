"""The sequence source: item-to-item transitions, counted by hand and used by the hybrid."""

from __future__ import annotations

import numpy as np
import pytest

from backend.recommender.cf import (
    CFParams,
    ModelStore,
    load,
    save,
    train,
    transition_matrix,
    user_items_matrix,
)
from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies import BlendConfig, BlendStrategy, RecommendRequest
from backend.recommender.strategies.sources import History, transition_scores

from .conftest import CATALOG, CHARGER, KETTLE, NOW, SKILLET, event


def test_counts_by_hand():
    t = transition_matrix([[0, 1, 2], [0, 1]], 4, window=2, decay=0.5).toarray()
    # 0 → 1 twice (2.0), 0 → 2 once at distance 2 (0.5): row total 2.5, divided by 3.5.
    assert t[0, 1] == pytest.approx(2.0 / 3.5) and t[0, 2] == pytest.approx(0.5 / 3.5)
    assert t[1, 2] == pytest.approx(1.0 / 2.0)
    assert t[2].sum() == 0 and t[3].sum() == 0  # nothing ever follows them
    assert np.all(np.diag(t) == 0)


def test_repeats_and_short_sequences_add_nothing():
    t = transition_matrix([[3, 3], [1], []], 4)
    assert t.nnz == 0


def test_newest_item_weighs_most():
    t = transition_matrix([[0, 1], [2, 3]], 4, window=1)
    models = train(
        user_items_matrix([(0, 0, 1.0)], 1, 4),
        [p.id for p in CATALOG[:4]],
        kinds=("transitions",),
        sequences=[[0, 1], [2, 3]],
        params=CFParams(transition_window=1),
    )
    assert models.transitions is not None
    np.testing.assert_allclose(models.transitions.toarray(), t.toarray())
    history = History(  # newest first: 2, then 0
        items=np.array([2, 0]), weights=np.ones(2), actions=("view", "view"), interacted=frozenset()
    )
    scores = transition_scores(models, history, decay=0.5)
    assert scores is not None and scores[3] == pytest.approx(2 * scores[1])
    assert transition_scores(None, history) is None


def test_saved_and_realigned_models_keep_transitions(tmp_path):
    ids = [p.id for p in CATALOG]
    models = train(
        user_items_matrix([(0, 0, 1.0)], 1, len(ids)),
        ids,
        kinds=("transitions",),
        sequences=[[0, 6, 7]],
    )
    save(models, tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.transitions is not None and "transitions" in loaded.kinds()
    np.testing.assert_allclose(loaded.transitions.toarray(), models.transitions.toarray())
    flipped = loaded.aligned(1, lambda: list(reversed(ids)))
    n = len(ids) - 1
    assert flipped.transitions[n - 0, n - 6] == pytest.approx(loaded.transitions[0, 6])


def test_hybrid_with_the_sequence_source_recommends_what_comes_next():
    """Shoppers buy charger → skillet → kettle; after a charger, the skillet comes next."""
    snapshot = CatalogSnapshot.build(CATALOG, {}, version="seq")
    i = snapshot.index
    chain = [i[CHARGER.id], i[SKILLET.id], i[KETTLE.id]]
    rows = [(u, item, 1.0) for u in range(5) for item in chain]
    models = train(
        user_items_matrix(rows, 5, len(CATALOG)),
        [p.id for p in snapshot.products],
        kinds=("transitions",),
        sequences=[chain] * 5,
    )
    strategy = BlendStrategy("hybrid", BlendConfig(weights={"sequence": 1.0}), ModelStore(models))
    request = RecommendRequest(interactions=[event(CHARGER, "purchase")], top_n=2, now=NOW)
    recs = strategy.recommend(snapshot, request)
    assert [snapshot.products[r.index] for r in recs] == [SKILLET, KETTLE]
    assert recs[0].evidence.sources[0].name == "sequence"
    assert strategy.rank(snapshot, request).tolist() == [r.index for r in recs]
