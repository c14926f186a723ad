"""Uncertainty for leave-one-out metrics: bootstrap intervals over users and paired tests.

Every metric here is a mean of one value per user, so resampling users with replacement
(the percentile bootstrap) gives its interval. Two strategies scored on the same users are
compared pairwise: the paired bootstrap resamples users once for both (the difference's
interval and a two-sided p-value), and the Wilcoxon signed-rank test needs no resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Values = npt.NDArray[np.float64]

RESAMPLES = 2000
SEED = 20260


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Strategy a against strategy b on the same users (difference = a − b)."""

    difference: Interval
    bootstrap_p: float  # two-sided: how often the resampled difference crosses 0
    wilcoxon_p: float  # two-sided Wilcoxon signed-rank (zero differences dropped)
    users: int
    a_better: int  # users where a scores higher
    b_better: int

    @property
    def significant(self) -> bool:
        return self.bootstrap_p < 0.05 and self.wilcoxon_p < 0.05 and self.difference.low > 0


def _resample_means(values: Values, resamples: int, seed: int) -> Values:
    """Means of ``resamples`` bootstrap samples of the users (the same draws for a seed)."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.empty(resamples)
    # In chunks: one index matrix for all draws would be resamples × users integers.
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    return means


def bootstrap_interval(
    values: Values, *, level: float = 0.95, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """Percentile bootstrap interval of the mean over users."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return Interval(0.0, 0.0, 0.0)
    means = _resample_means(values, resamples, seed)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(values.mean()), float(low), float(high))


def paired_test(
    a: Values, b: Values, *, resamples: int = RESAMPLES, seed: int = SEED
) -> PairedTest:
    """Paired bootstrap and Wilcoxon signed-rank of a − b (per-user values, same users)."""
    from scipy.stats import wilcoxon

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("paired values need the same users in the same order")
    diff = a - b
    interval = bootstrap_interval(diff, resamples=resamples, seed=seed)
    means = _resample_means(diff, resamples, seed)
    # Two-sided percentile p-value: twice the smaller tail beyond 0 (at least 1/resamples).
    tail = min(float((means <= 0).mean()), float((means >= 0).mean()))
    boot_p = min(1.0, max(2.0 * tail, 1.0 / resamples))
    nonzero = diff[diff != 0]
    wil_p = 1.0 if len(nonzero) == 0 else float(wilcoxon(nonzero).pvalue)
    return PairedTest(
        difference=interval,
        bootstrap_p=boot_p,
        wilcoxon_p=wil_p,
        users=len(diff),
        a_better=int((diff > 0).sum()),
        b_better=int((diff < 0).sum()),
    )
