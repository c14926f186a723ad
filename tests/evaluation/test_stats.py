"""Bootstrap intervals and paired tests against distributions whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from backend.recommender.evaluation.stats import bootstrap_interval, paired_test


def test_interval_brackets_the_mean_and_shrinks_with_more_users():
    rng = np.random.default_rng(1)
    small = bootstrap_interval(rng.binomial(1, 0.3, 400).astype(float))
    large = bootstrap_interval(rng.binomial(1, 0.3, 10_000).astype(float))
    assert small.low <= small.mean <= small.high
    # Normal approximation: half-width ≈ 1.96·sqrt(p(1−p)/n).
    expected = 1.96 * np.sqrt(0.21 / 10_000)
    assert (large.high - large.low) / 2 == pytest.approx(expected, rel=0.15)
    assert large.high - large.low < small.high - small.low
    constant = bootstrap_interval(np.full(50, 0.25))
    assert (constant.low, constant.mean, constant.high) == pytest.approx((0.25, 0.25, 0.25))


def test_95_percent_intervals_cover_the_true_mean_about_95_percent_of_the_time():
    """Generated: 300 samples of 300 users from a skewed, NDCG-like distribution."""
    rng = np.random.default_rng(2)
    ranks = np.arange(10)
    gains = 1.0 / np.log2(ranks + 2)
    p = np.r_[np.full(10, 0.012), 0.88]  # 12% hit somewhere in the top 10, else 0
    true_mean = float((gains * 0.012).sum())
    covered = 0
    for trial in range(300):
        draw = rng.choice(11, size=300, p=p)
        values = np.where(draw < 10, gains[np.minimum(draw, 9)], 0.0)
        ci = bootstrap_interval(values, resamples=400, seed=trial)
        covered += ci.low <= true_mean <= ci.high
    assert 0.90 <= covered / 300 <= 0.985


def test_paired_test_finds_a_real_difference():
    rng = np.random.default_rng(3)
    base = rng.binomial(1, 0.1, 5000) * rng.uniform(0.3, 1.0, 5000)
    better = np.where(rng.random(5000) < 0.05, 1.0, base)  # helps 5% of users, hurts none
    result = paired_test(better, base)
    assert result.difference.mean == pytest.approx(float((better - base).mean()))
    assert result.difference.low > 0 and result.significant
    assert result.bootstrap_p < 0.001 and result.wilcoxon_p < 1e-6
    assert result.b_better == 0 and result.a_better > 0
    assert not paired_test(base, better).significant  # the reverse is worse, not better


def test_paired_test_false_positive_rate_under_the_null():
    """Generated: 200 pairs of strategies that are exchangeable; ~5% may come out p<0.05."""
    rng = np.random.default_rng(4)
    boot, wil = 0, 0
    for trial in range(200):
        a = rng.binomial(1, 0.2, 300) * rng.uniform(0.3, 1.0, 300)
        b = rng.binomial(1, 0.2, 300) * rng.uniform(0.3, 1.0, 300)
        result = paired_test(a, b, resamples=400, seed=trial)
        boot += result.bootstrap_p < 0.05
        wil += result.wilcoxon_p < 0.05
    assert boot / 200 <= 0.10 and wil / 200 <= 0.10


def test_paired_test_needs_the_same_users():
    with pytest.raises(ValueError):
        paired_test(np.zeros(3), np.zeros(4))
    same = paired_test(np.ones(5), np.ones(5))
    assert same.wilcoxon_p == 1.0 and not same.significant
