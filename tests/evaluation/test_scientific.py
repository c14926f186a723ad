"""The real evaluation dataset parses as its README describes (skips where it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.recommender.evaluation.dataset import load

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "amazon-scientific"


@pytest.mark.slow
def test_scientific_split_matches_its_readme():
    if not SHARED.is_dir():
        pytest.skip(f"shared dataset folder {SHARED} is absent on this machine")
    data = load(SHARED)
    assert data.n_items == 4385
    assert len(data.valid.targets) == len(data.test.targets) == 8442
    # 59,427 interactions, less what the preprocessing cut from histories longer than 50.
    assert max(len(h) for h in data.test.histories) == 50
    assert 59_000 < sum(len(h) + 1 for h in data.test.histories) <= 59_427
    for valid_history, valid_target, test_history in zip(
        data.valid.histories, data.valid.targets, data.test.histories, strict=True
    ):
        # One step apart, as documented (both cut to the newest 50 items).
        assert test_history == [*valid_history, valid_target][-len(test_history) :]
    named = sum(1 for p in data.products if p.category != "Other")
    assert named > 4200  # nearly every item has a category path
