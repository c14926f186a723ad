"""The k largest of a whole-catalogue score array without partitioning all of it.

A request picks a few items out of every product twice: the content source's candidates
for exact rescoring (2,000 of 100k) and the final top 10. ``np.partition`` and
``np.argpartition`` over 100k values took 0.8–1.0 ms each on one core of this host (2 ms
under the load of the other processes), the largest steps of a request after the two
matrix products. ``lower_bound`` finds, in one vectorised pass, a value that at least k
elements reach; only those few elements are then partitioned, with the same result.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

# Groups per wanted element: with G = 4k groups of n/G elements, about k·(1 + k/2G) ≈ 1.1k
# elements reach the bound on data in no particular order.
GROUPS_PER_ITEM = 4


def lower_bound(values: npt.NDArray[np.floating], k: int) -> float | None:
    """A value t that at least ``k`` elements of ``values`` are ≥ to (so the k-th largest is
    ≥ t), close to the k-th largest; None when there is no use for one: NaN in ``values``
    (its ordering is not a number's) or too few elements to split into groups.

    The elements are split into G ≥ k disjoint groups (strided: element i is in group
    i mod G, so a run of high scores in one stretch of the catalogue spreads over many
    groups); t is the k-th largest of the groups' maxima, each of them an element of its
    own group, so k distinct elements are ≥ t.
    """
    n = len(values)
    groups = GROUPS_PER_ITEM * k
    if k <= 0 or n < 2 * groups:
        return None
    rows = n // groups
    maxima = values[: rows * groups].reshape(rows, groups).max(axis=0)
    # The last n mod G elements are groups of one each.
    maxima = np.concatenate([maxima, values[rows * groups :]])
    if np.isnan(maxima).any():  # max propagates NaN: any NaN in ``values`` shows here
        return None
    return float(np.partition(maxima, len(maxima) - k)[len(maxima) - k])


def largest(values: npt.NDArray[np.floating], k: int) -> IntArray:
    """Indexes of the k largest values, in no particular order: the set
    ``np.argpartition(values, n - k)[n - k:]`` holds (0 < k ≤ n).

    Where that set is not determined by the values (a tie across the k-th place: which of
    the tied elements argpartition keeps is up to its algorithm), or there is no bound, the
    answer is argpartition's own, over every element.
    """
    n = len(values)
    bound = lower_bound(values, k)
    if bound is not None:
        pool = np.flatnonzero(values >= bound)
        sub = values[pool]
        kth = np.partition(sub, len(sub) - k)[len(sub) - k]
        chosen = sub >= kth
        if np.count_nonzero(chosen) == k:  # no tie across the k-th place: one possible set
            found: IntArray = pool[chosen]
            return found
    every: IntArray = np.argpartition(values, n - k)[n - k :]
    return every


__all__ = ["largest", "lower_bound"]
