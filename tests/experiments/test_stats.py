"""Known answers for the report's statistics."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from backend.experiments.stats import (
    Arm,
    proportion,
    two_proportion_p_value,
    verdict,
    wilson_interval,
    z_value,
)


def test_wilson_known_answers():
    # 10 of 100 at 95%: the textbook (0.0552, 0.1744) (Newcombe 1998, method 3).
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.05522, abs=5e-5)
    assert high == pytest.approx(0.17436, abs=5e-5)
    # 0 of 10: the lower bound is exactly 0, the upper z²/(n+z²).
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(1.96**2 / (10 + 1.96**2), abs=1e-3)
    # All successes mirror it.
    assert wilson_interval(10, 10)[0] == pytest.approx(1 - high, abs=1e-9)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrower = wilson_interval(10, 100, confidence=0.90)
    assert narrower[0] > 0.05522 and narrower[1] < 0.17436


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(-1, 10)


def test_z_value():
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError):
        z_value(1.0)


def test_two_proportion_p_value_matches_the_normal_distribution():
    # 120/1000 vs 80/1000: pooled p = 0.1, z = 0.04 / sqrt(0.09 * 0.002) = 2.9814
    z = 0.04 / math.sqrt(0.1 * 0.9 * (2 / 1000))
    expected = 2 * norm.sf(z)
    assert two_proportion_p_value(120, 1000, 80, 1000) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.00287, abs=1e-5)
    assert two_proportion_p_value(80, 1000, 120, 1000) == pytest.approx(expected, rel=1e-9)
    assert two_proportion_p_value(0, 50, 0, 50) == 1.0
    assert two_proportion_p_value(1, 0, 1, 10) is None


def test_verdict():
    clear = verdict([Arm("A", 80, 1000), Arm("B", 120, 1000)])
    assert clear.best == "B" and clear.confident and clear.p_value < 0.01
    noise = verdict([Arm("A", 100, 1000), Arm("B", 104, 1000)])
    assert noise.best == "B" and not noise.confident and noise.p_value > 0.5
    tie = verdict([Arm("A", 10, 100), Arm("B", 10, 100)])
    assert tie.best is None and not tie.confident
    assert verdict([Arm("A", 0, 0), Arm("B", 0, 0)]).best is None
    alone = verdict([Arm("A", 5, 50), Arm("B", 0, 0)])
    assert alone.best == "A" and alone.p_value is None and not alone.confident
    # With three arms the leader is tested against the runner-up, not the weakest.
    three = verdict([Arm("A", 50, 1000), Arm("B", 120, 1000), Arm("C", 112, 1000)])
    assert three.best == "B" and not three.confident


def test_proportion():
    assert proportion(3, 4) == 0.75
    assert proportion(0, 0) == 0.0
