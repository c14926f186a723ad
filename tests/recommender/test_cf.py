"""Collaborative models: training, re-alignment to a new snapshot order, persistence."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import scipy.sparse as sp

from backend.recommender import cf
from backend.recommender.cf import CFParams, ModelStore, train, user_items_matrix

IDS = [uuid.UUID(int=i + 1) for i in range(6)]
# Items 0-1 always together, 2-3 together, 4 with 5 once.
ROWS = [(u, i, 1.0) for u in range(4) for i in (0, 1)] + [
    (u, i, 1.0) for u in range(4, 7) for i in (2, 3)
] + [(7, 4, 1.0), (7, 5, 1.0)]  # fmt: skip
PARAMS = CFParams(knn_neighbours=5, als_factors=3, als_iterations=20, ease_lambda=1.0)


@pytest.fixture(scope="module")
def models() -> cf.CFModels:
    matrix = user_items_matrix(ROWS, 8, 6)
    embeddings = np.eye(6, dtype=np.float32)
    return train(matrix, IDS, params=PARAMS, item_embeddings=embeddings, version="v1")


def test_trains_every_model_and_counts_co_interactions(models):
    assert models.kinds() == ["bm25", "cosine", "als", "ease", "ease_content"]
    assert models.co_counts[0, 1] == 4 and models.co_counts[2, 3] == 3
    assert models.co_counts[0, 0] == 0  # no self pairs
    for matrix in (models.bm25, models.cosine):
        assert matrix[0].toarray().argmax() == 1 and matrix[2].toarray().argmax() == 3
    assert models.ease[0].argmax() == 1


def test_als_fold_in_finds_the_partner(models):
    scores = cf.als_user_scores(
        models.als_items,
        np.array([2]),
        np.array([1.0]),
        regularization=models.als_regularization,
        alpha=models.als_alpha,
    )
    scores[2] = -np.inf
    assert int(np.argmax(scores)) == 3


def test_als_fold_in_through_woodbury_equals_the_direct_solve():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(40, 8)).astype(np.float32)
    items, weights = np.array([3, 7, 11]), np.array([1.0, 0.85, 0.3])  # confidence − 1 < 0 too
    reg, alpha = 0.5, 2.0
    yi = y[items].astype(np.float64)
    c = alpha * weights
    a = y.T.astype(np.float64) @ y + reg * np.eye(8) + (yi * (c - 1.0)[:, None]).T @ yi
    expected = y @ np.linalg.solve(a, yi.T @ c)
    got = cf.als_user_scores(y, items, weights, regularization=reg, alpha=alpha)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_alignment_follows_a_new_catalog_order(models):
    new_item = uuid.UUID(int=99)
    order = [IDS[3], new_item, IDS[0], IDS[1], IDS[2]]  # one gone (4, 5), one new
    aligned = models.aligned(1, lambda: order)
    assert aligned.item_ids == order
    assert aligned.co_counts[2, 3] == 4  # items 0-1 now at positions 2-3
    assert aligned.co_counts[0, 4] == 3  # items 3-2 at 0 and 4
    assert aligned.co_counts[1].nnz == 0  # the new item knows nothing yet
    assert aligned.ease.shape == (5, 5) and aligned.ease[2].argmax() == 3
    assert aligned.als_items.shape == (5, 3) and not aligned.als_items[1].any()
    assert models.aligned(1, lambda: []) is aligned  # cached per key


def test_save_and_load_round_trip(models, tmp_path):
    path = tmp_path / "cf.npz"
    cf.save(models, path)
    loaded = cf.load(path)
    assert loaded.version == "v1" and loaded.item_ids == IDS
    assert loaded.kinds() == models.kinds()
    assert (loaded.bm25 != models.bm25).nnz == 0
    assert np.array_equal(loaded.ease, models.ease)


def test_store_swaps_atomically(models):
    store = ModelStore()
    assert store.for_items(1, lambda: IDS) is None
    store.set(models)
    assert store.for_items(2, lambda: IDS) is models


def test_repeated_pairs_add_up():
    m = user_items_matrix([(0, 1, 1.0), (0, 1, 4.0), (1, 0, 6.0)], 2, 3)
    assert isinstance(m, sp.csr_matrix) and m[0, 1] == 5.0 and m.nnz == 2


def test_ease_with_text_shares_weight_between_similar_items():
    # Item 2 was never bought; its text equals item 1's. Plain EASE can never recommend it;
    # with the text Gram, item 1's shoppers get it.
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0]], dtype=np.float32))
    text = np.array([[1, 0], [0, 1], [0, 1]], dtype=np.float32)
    plain = cf.ease_weights(x, lam=1.0)
    with_text = cf.ease_weights(x, lam=1.0, item_embeddings=text, content_alpha=2.0)
    assert plain[1, 2] == 0.0 and with_text[1, 2] > 0.3
