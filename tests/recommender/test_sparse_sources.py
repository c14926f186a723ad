"""Sparse sources (item-item and transitions score few items): the same numbers, bit for
bit, as the dense arrays they replaced, on random matrices and masks; and the blend built
from them equals the dense sum."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from backend.recommender.cf import ModelStore
from backend.recommender.strategies import BlendConfig, BlendStrategy, sources
from backend.recommender.strategies.ranking import blocked_mask
from backend.recommender.strategies.sources import SparseScores, weighted_rows

from .test_blend_arithmetic import WEIGHTS, requests, world


def random_matrix(rng: np.random.Generator, n: int) -> sp.csr_matrix:
    """Positive and negative float32 weights, some rows empty, sorted or unsorted columns."""
    density = float(rng.choice([0.0005, 0.01, 0.2]))
    matrix = sp.random(n, n, density=density, format="csr", dtype=np.float32, random_state=rng)
    matrix.data -= np.float32(0.3)  # some below 0, as EASE-like weights can be
    if rng.random() < 0.5:
        matrix.sort_indices()
    return sp.csr_matrix(matrix)


@pytest.mark.parametrize("seed", range(30))
def test_weighted_rows_are_the_sparse_product_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(10):
        n = int(rng.integers(1, 2000))
        matrix = random_matrix(rng, n)
        rows = rng.integers(0, n, int(rng.integers(0, 30)))  # repeats too
        weights = rng.random(len(rows)) * 4
        want = np.asarray(matrix[rows].T @ weights, dtype=np.float64).ravel()
        got = weighted_rows(matrix, rows, weights)
        assert np.all(np.diff(got.indexes) > 0)  # sorted, distinct
        assert got.values.dtype == np.float64 and got.size == n
        assert np.array_equal(got.dense(), want)
        for i in rng.integers(0, n, 20).tolist():
            assert got.at(i) == want[i]


def test_weighted_rows_known_answer() -> None:
    matrix = sp.csr_matrix(
        np.array([[0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 4.0], [3.0, 0.0, 0.0, 0.0]], np.float32)
    )
    got = weighted_rows(matrix, np.array([1, 0]), np.array([0.5, 2.0]))
    assert got.indexes.tolist() == [1, 3] and got.values.tolist() == [4.0, 4.0]
    assert got.at(0) == 0.0 and got.at(2) == 0.0 and got.at(3) == 4.0
    assert got.dense().tolist() == [0.0, 4.0, 0.0, 4.0]
    empty = weighted_rows(matrix, np.array([], dtype=np.int64), np.array([]))
    assert empty.dense().tolist() == [0.0] * 4


@pytest.mark.parametrize("seed", range(30))
def test_the_allowed_range_of_sparse_scores_is_that_of_their_dense_array(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(20):
        n = int(rng.integers(1, 500))
        indexes = np.unique(rng.integers(0, n, int(rng.integers(0, n + 1))))
        values = rng.normal(size=len(indexes))
        scores = SparseScores(indexes.astype(np.int64), values, n)
        masks: list[npt.NDArray[np.bool_]] = [
            rng.random(n) < rng.random(),
            np.ones(n, dtype=bool),
            np.zeros(n, dtype=bool),
        ]
        only = np.zeros(n, dtype=bool)
        only[indexes] = True  # every allowed item scored: no allowed zero
        masks.append(only)
        for allowed in masks:
            got = sources.allowed_range(scores, allowed)
            assert got == sources.allowed_range(scores.dense(), allowed)
            top = sources.extent(got)
            assert np.array_equal(
                sources.normalise(scores, ~allowed, top),
                sources.normalise(scores.dense(), ~allowed, top),
            )


@pytest.mark.parametrize("seed", range(4))
def test_the_blend_of_sparse_sources_is_the_dense_sum(seed: int) -> None:
    """Σ weight · score / top over dense arrays, source by source in the blend's order."""
    snapshot, models, _ = world(seed)
    strategy = BlendStrategy("hybrid", BlendConfig(weights=WEIGHTS), ModelStore(models))
    sparse_seen = 0
    for request in requests(snapshot, seed):
        history = strategy._history(snapshot, request)
        blocked = blocked_mask(snapshot, request, history.interacted)
        found = strategy._sources(snapshot, request, history, blocked, models)
        scored = strategy._score(snapshot, request, history, blocked, models)
        if found is None:
            assert scored is None
            continue
        assert scored is not None
        want = np.zeros(len(snapshot))
        for name, values in found.raw.items():
            sparse_seen += isinstance(values, SparseScores)
            top = found.tops[name]
            if top > 0:
                want += np.asarray(sources.dense(values), dtype=np.float64) / top * WEIGHTS[name]
        assert np.array_equal(scored.blended, want)
        for i in np.flatnonzero(want).tolist():
            total = sum(part.at(i) for part in scored.parts.values())
            assert total == pytest.approx(want[i], rel=1e-12)
    assert sparse_seen > 0  # cf and sequence came as sparse scores
