"""Deterministic assignment of users to variants.

A user's point in [0, 1) is a SHA-256 of the experiment name and the user id, so the same user
gets the same variant in every call, process and replica (Python's ``hash()`` is salted per
process and would not do), and two experiments bucket independently of each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_SCALE = float(2**64)


def bucket(experiment_key: str, user_id: object) -> float:
    """The user's point in [0, 1) for this experiment."""
    digest = hashlib.sha256(f"{experiment_key}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def choose(shares: Sequence[float], point: float) -> int:
    """The index of the variant whose cumulative share interval holds ``point``.

    Shares are expected to sum to 1; the last variant also takes any rounding remainder.
    """
    if not shares:
        raise ValueError("no variants to choose from")
    upper = 0.0
    for index, share in enumerate(shares):
        upper += share
        if point < upper:
            return index
    return len(shares) - 1


def assign(experiment_key: str, user_id: object, shares: Sequence[float]) -> int:
    return choose(shares, bucket(experiment_key, user_id))
