"""Bucketing: the same user always lands in the same variant, and shares are honoured."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from scipy.stats import chisquare

from backend.experiments.bucketing import assign, bucket, choose

EXPERIMENT = "content-heavy blend, March"


def synthetic_users(n: int) -> list[uuid.UUID]:
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"shopper:{i}") for i in range(n)]


def test_same_user_same_variant_across_calls():
    shares = (0.5, 0.5)
    for user in synthetic_users(200):
        first = assign(EXPERIMENT, user, shares)
        assert all(assign(EXPERIMENT, user, shares) == first for _ in range(3))


def test_same_user_same_variant_in_another_process():
    """SHA-256, not Python's per-process salted hash(): a fresh interpreter agrees."""
    users = synthetic_users(50)
    here = [assign(EXPERIMENT, u, (0.3, 0.7)) for u in users]
    code = (
        "import uuid; from backend.experiments.bucketing import assign; "
        f"print(','.join(str(assign({EXPERIMENT!r}, uuid.uuid5(uuid.NAMESPACE_URL, "
        "f'shopper:{i}'), (0.3, 0.7))) for i in range(50)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345"},
    )  # fmt: skip
    assert [int(x) for x in out.stdout.strip().split(",")] == here


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.2, 0.3, 0.5), (0.9, 0.1)])
def test_assignment_is_balanced_chi_square(shares):
    n = 10_000
    counts = [0] * len(shares)
    for user in synthetic_users(n):
        counts[assign(EXPERIMENT, user, shares)] += 1
    result = chisquare(counts, f_exp=[s * n for s in shares])
    assert result.pvalue > 0.01, (counts, result.pvalue)


def test_a_skewed_assignment_fails_the_same_check():
    """The balance test can fail: 52/48 on 10k is far outside chance."""
    result = chisquare([5200, 4800], f_exp=[5000, 5000])
    assert result.pvalue < 0.01


def test_experiments_bucket_independently():
    users = synthetic_users(4000)
    a = [assign("experiment-a", u, (0.5, 0.5)) for u in users]
    b = [assign("experiment-b", u, (0.5, 0.5)) for u in users]
    both = sum(x == 1 and y == 1 for x, y in zip(a, b, strict=True))
    assert 0.2 < both / len(users) < 0.3  # independent halves overlap in a quarter


def test_points_and_cumulative_shares():
    point = bucket(EXPERIMENT, "u1")
    assert 0.0 <= point < 1.0 and point == bucket(EXPERIMENT, "u1")
    assert bucket(EXPERIMENT, "u1") != bucket("other", "u1")
    assert choose((0.2, 0.3, 0.5), 0.0) == 0
    assert choose((0.2, 0.3, 0.5), 0.19999) == 0
    assert choose((0.2, 0.3, 0.5), 0.2) == 1
    assert choose((0.2, 0.3, 0.5), 0.5) == 2
    assert choose((0.2, 0.3, 0.4999999), 0.9999999) == 2  # rounding remainder goes last
    with pytest.raises(ValueError):
        choose((), 0.5)
