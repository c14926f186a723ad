"""The real Gift Cards files convert to atomic files the loader reads (skips where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.recommender.evaluation.amazon_atomic import write_atomic
from backend.recommender.evaluation.dataset import load

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "amazon-gift-cards"


@pytest.mark.slow
def test_gift_cards_become_a_leave_one_out_dataset(tmp_path):
    if not SHARED.is_dir():
        pytest.skip(f"shared dataset folder {SHARED} is absent on this machine")
    report = write_atomic(
        SHARED / "Gift_Cards_5.json.gz", SHARED / "meta_Gift_Cards.json.gz", tmp_path / "Gifts"
    )
    assert sum(report.skipped.values()) == 0
    data = load(tmp_path / "Gifts")
    assert data.n_items == 148 and len(data.test.targets) == 458  # the 5-core: every user kept
    assert sum(1 for p in data.products if p.category != "Other") >= 140
    assert sum(1 for p in data.products if p.tags) >= 140
    for valid_history, valid_target, test_history in zip(
        data.valid.histories, data.valid.targets, data.test.histories, strict=True
    ):
        assert test_history == [*valid_history, valid_target][-len(test_history) :]
