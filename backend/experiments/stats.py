"""Proportions, their confidence intervals and the comparison behind an experiment's verdict.

Wilson score intervals stay inside [0, 1] and behave at small counts and rates near 0, where
the normal ("Wald") interval does not. The difference between the two leading variants is a
two-sided two-proportion z-test with the pooled proportion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


def z_value(confidence: float) -> float:
    """The two-sided standard normal quantile: 1.96 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be within (0, 1)")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def proportion(successes: int, trials: int) -> float:
    return successes / trials if trials > 0 else 0.0


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of successes/trials; (0, 1) when there are no trials."""
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError("need 0 <= successes <= trials")
    if trials == 0:
        return (0.0, 1.0)
    z = z_value(confidence)
    p = successes / trials
    z2 = z * z
    denominator = 1.0 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # At 0 or all successes the bound is exactly 0 or 1 (not a rounding error away from it).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return (low, high)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of H0 "both rates are equal" (pooled z-test); None without data."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0.0:  # nobody (or everybody) succeeded in both: no difference to see
        return 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class Arm:
    name: str
    successes: int
    trials: int

    @property
    def rate(self) -> float:
        return proportion(self.successes, self.trials)


@dataclass(frozen=True, slots=True)
class Verdict:
    best: str | None  # the variant with the highest rate (None: no data or a tie)
    p_value: float | None  # best against the runner-up
    confident: bool


def verdict(arms: Sequence[Arm], *, confidence: float = 0.95) -> Verdict:
    """Which variant leads, and whether the lead is real.

    The leader is tested against the runner-up (the hardest comparison, so more than two
    variants never make a winner easier to declare). ``confident`` needs both p < 1 -
    confidence and the leader's Wilson lower bound above the runner-up's rate.
    """
    ranked = sorted((a for a in arms if a.trials > 0), key=lambda a: a.rate, reverse=True)
    if not ranked:
        return Verdict(best=None, p_value=None, confident=False)
    if len(ranked) == 1:
        return Verdict(best=ranked[0].name, p_value=None, confident=False)
    best, runner = ranked[0], ranked[1]
    p_value = two_proportion_p_value(best.successes, best.trials, runner.successes, runner.trials)
    if best.rate == runner.rate:
        return Verdict(best=None, p_value=p_value, confident=False)
    low, _ = wilson_interval(best.successes, best.trials, confidence)
    confident = p_value is not None and p_value < 1.0 - confidence and low > runner.rate
    return Verdict(best=best.name, p_value=p_value, confident=confident)
