"""bench/storefront_load.py's A/B runs: which code runs in which order, with which settings."""

from __future__ import annotations

from pathlib import Path

from bench.storefront_load import Code, run_order

TREE = Path("/tmp/baseline-tree")
BASELINE = Code(TREE, (("PRECOMPUTE_MAX_WAIT_SECONDS", "0"),))


def sides(codes: list[Code]) -> list[str]:
    return [("B" if c.root else "A") + str(c.round) for c in codes]


def test_one_round_runs_each_side_once_in_the_order_asked():
    assert sides(run_order(BASELINE, first=True, rounds=1)) == ["B0", "A0"]
    assert sides(run_order(BASELINE, first=False, rounds=1)) == ["A0", "B0"]


def test_rounds_alternate_which_side_goes_first():
    codes = run_order(BASELINE, first=True, rounds=3)
    assert sides(codes) == ["B1", "A1", "A2", "B2", "B3", "A3"]
    assert len({c.tag for c in codes}) == 6  # every target's name is its own
    assert len({c.key for c in codes}) == 6  # and so is its Redis key prefix


def test_the_baseline_env_reaches_the_baseline_only():
    base = {"PATH": "/bin", "PRECOMPUTE_MAX_WAIT_SECONDS": "2"}
    baseline, this = run_order(BASELINE, first=True, rounds=1)
    assert baseline.env(base) == {
        "PATH": "/bin",
        "PYTHONPATH": str(TREE),
        "PRECOMPUTE_MAX_WAIT_SECONDS": "0",
    }
    assert this.env(base) == base
