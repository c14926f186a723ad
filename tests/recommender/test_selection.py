"""The k largest without a whole partition (``selection``) and the ranking's ``top_k`` built
on it give exactly what a partition of every element gives, on random catalogues with
ties, blocked items, infinities and NaN."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from backend.recommender import selection
from backend.recommender.strategies import ranking
from backend.recommender.strategies.ranking import top_k


def scores(rng: np.random.Generator, n: int, dtype: type) -> npt.NDArray[Any]:
    """Random scores; often coarse (many ties), sometimes with ±inf and NaN, sometimes
    sorted (high scores bunched at one end of the catalogue)."""
    kind = rng.integers(5)
    if kind == 0:  # few distinct values: ties everywhere, across the k-th place too
        values: npt.NDArray[Any] = rng.integers(0, 6, n).astype(dtype)
    elif kind == 1:
        values = np.sort(rng.normal(size=n)).astype(dtype)
    else:
        values = rng.normal(size=n).astype(dtype)
    if rng.random() < 0.3:
        spots = rng.integers(0, n, int(rng.integers(1, 5)))
        values[spots] = rng.choice([np.inf, -np.inf, np.nan], len(spots))
    return values


def test_the_bound_is_reached_by_at_least_k_elements_and_by_no_more_than_needed() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 5000))
        k = int(rng.integers(1, 300))
        values = rng.normal(size=n)
        bound = selection.lower_bound(values, k)
        if n < 2 * selection.GROUPS_PER_ITEM * k:
            assert bound is None
            continue
        assert bound is not None
        assert np.count_nonzero(values >= bound) >= k
        assert bound <= np.sort(values)[n - k]  # never above the k-th largest
    assert selection.lower_bound(np.array([1.0, np.nan] * 100), 3) is None
    # Groups are strided: the bound of a sorted array still lies near its k-th largest.
    ordered = np.arange(100_000, dtype=np.float64)
    bound = selection.lower_bound(ordered, 10)
    assert bound is not None and np.count_nonzero(ordered >= bound) < 100


@pytest.mark.parametrize("seed", range(40))
def test_largest_is_the_set_argpartition_keeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(15):
        n = int(rng.integers(1, 20_000))
        k = int(rng.integers(1, min(n, 2500) + 1))
        values = scores(rng, n, np.float32 if seed % 2 else np.float64)
        got = selection.largest(values, k)
        want = np.argpartition(values, n - k)[n - k :]
        assert len(got) == k and len(set(got.tolist())) == k
        assert sorted(got.tolist()) == sorted(want.tolist())


def full_top_k(
    scores: npt.NDArray[np.floating],
    k: int,
    blocked: npt.NDArray[np.bool_],
    popularity: npt.NDArray[np.float64],
    *,
    positive_only: bool,
) -> npt.NDArray[np.int64]:
    """``top_k`` as it was before the bound: a partition of every element."""
    masked = np.where(blocked, -np.inf, scores)
    if positive_only:
        masked[masked <= 0] = -np.inf
    available = int(np.count_nonzero(np.isfinite(masked)))
    k = min(k, available)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    kth = np.partition(masked, len(masked) - k)[len(masked) - k]
    candidates = np.flatnonzero(masked >= kth)
    order = np.lexsort((candidates, -popularity[candidates], -masked[candidates]))
    return candidates[order[:k]]


@pytest.mark.parametrize("seed", range(40))
def test_top_k_equals_the_full_partition(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    for _ in range(15):
        n = int(rng.integers(1, 30_000))
        k = int(rng.choice([1, 5, 10, 50, int(rng.integers(1, n + 1))]))
        values = scores(rng, n, np.float64 if seed % 2 else np.float32)
        blocked = rng.random(n) < rng.choice([0.0, 0.1, 0.9, 0.999])
        popularity = rng.integers(0, 4, n).astype(np.float64)  # ties here as well
        for positive_only in (True, False):
            got = top_k(values, k, blocked, popularity, positive_only=positive_only)
            want = full_top_k(values, k, blocked, popularity, positive_only=positive_only)
            assert got.tolist() == want.tolist()


def test_top_k_known_answer_with_ties() -> None:
    # 4 of them score 3.0; the more popular first, then the lower index.
    values = np.zeros(1000)
    values[[700, 5, 300, 900]] = 3.0
    values[42] = 4.0
    values[43] = 5.0  # blocked
    popularity = np.zeros(1000)
    popularity[[300, 900]] = 2.0
    blocked = np.zeros(1000, dtype=bool)
    blocked[43] = True
    got = top_k(values, 4, blocked, popularity, positive_only=True)
    assert got.tolist() == [42, 300, 900, 5]
    got = top_k(values, 10, blocked, popularity, positive_only=True)
    assert got.tolist() == [42, 300, 900, 5, 700]  # only 5 score above 0


def test_top_k_takes_the_bound_path_on_a_large_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparisons above would pass with the bound never used: count its use."""
    used: list[float | None] = []

    def spy(values: npt.NDArray[np.floating], k: int) -> float | None:
        bound = selection.lower_bound(values, k)
        used.append(bound)
        return bound

    monkeypatch.setattr(ranking, "lower_bound", spy)
    rng = np.random.default_rng(5)
    values = rng.random(100_000)
    got = top_k(values, 10, np.zeros(100_000, bool), np.zeros(100_000), positive_only=True)
    assert used and used[0] is not None
    assert got.tolist() == np.argsort(-values, kind="stable")[:10].tolist()


def test_largest_partitions_only_the_few_that_reach_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = np.random.default_rng(6).random(100_000)
    want = np.argsort(values)[-2000:]

    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a partition of every element")

    monkeypatch.setattr(np, "argpartition", refused)
    assert sorted(selection.largest(values, 2000).tolist()) == sorted(want.tolist())
