"""Ranking metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.recommender.evaluation.metrics import rank_of, summarise


def test_hit_ndcg_recall_coverage_by_hand():
    lists = [
        [5, 1, 2] + list(range(10, 27)),  # target 1 at position 1
        list(range(30, 45)) + [7] + [8, 9, 50, 51],  # target 7 at position 15: only in top 20
        [1, 2, 3],  # target 4 nowhere
    ]
    m = summarise(lists, [1, 7, 4], n_items=100, embeddings=None)
    assert m.hr10 == pytest.approx(1 / 3)
    assert m.ndcg10 == pytest.approx((1 / math.log2(3)) / 3)
    assert m.recall20 == pytest.approx(2 / 3)
    top10s = set(lists[0][:10]) | set(lists[1][:10]) | set(lists[2][:10])
    assert m.coverage == pytest.approx(len(top10s) / 100)
    assert m.users == 3


def test_intra_list_diversity():
    e = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    same = summarise([[0, 1]], [9], n_items=3, embeddings=e)
    mixed = summarise([[0, 2]], [9], n_items=3, embeddings=e)
    assert same.diversity == pytest.approx(0.0) and mixed.diversity == pytest.approx(1.0)


def test_rank_of():
    assert rank_of([4, 5, 6], 6) == 2 and rank_of([4], 1) is None
