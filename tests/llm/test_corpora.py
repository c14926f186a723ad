"""The gate: on corpora generated from the demo catalog (tests/llm/corpora, regenerate with
``python -m tests.llm.corpora.generate``), the check catches ≥ 99% of answers with one
planted unsupported claim and rejects ≤ 5% of faithful answers."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.llm.corpora.evaluate import Rates, both, load


@pytest.fixture(scope="module")
def rates() -> tuple[Rates, Rates]:
    return both()


def test_the_corpora_are_large_and_spread_over_every_kind_of_claim():
    planted, faithful = load("planted.jsonl"), load("faithful.jsonl")
    assert len(planted) >= 300 and len(faithful) >= 300
    kinds = Counter(row["kind"] for row in planted)
    assert set(kinds) == {
        "price", "shipping", "stock", "social", "past", "material", "compatibility",
        "included", "novelty", "comparison",
    }  # fmt: skip
    assert min(kinds.values()) >= 30
    # Varied wording, not a few sentences: ~75 templates with product slots, joined to varied
    # faithful reasons.
    assert len({row["claim"] for row in planted}) >= 120
    assert len({json.dumps(row["answer"]) for row in planted}) == len(planted)
    assert {row["strategy"] for row in faithful} >= {"rules", "weighted", "popularity", "hybrid"}


def test_at_least_99_percent_of_planted_claims_are_caught(rates):
    planted, _ = rates
    assert planted.rate() >= 0.99, [row["claim"] for row in planted.missed]
    for kind in planted.total:
        assert planted.rate(kind) >= 0.95, kind


def test_planted_claims_are_caught_for_their_own_words(rates):
    """Not by luck elsewhere in the answer: a problem quotes words of the planted claim."""
    planted, _ = rates
    assert planted.claim_rate() >= 0.97


def test_at_most_5_percent_of_faithful_answers_are_rejected(rates):
    _, faithful = rates
    rejected = [r.problems[0].detail for ex in faithful.examples.values() for _, r in ex]
    assert faithful.rate() <= 0.05, rejected[:10]


def test_hybrid_answers_can_name_the_past_items_behind_them():
    """Hybrid evidence names its past items, so faithful hybrid answers cite past facts."""
    hybrid = [row for row in load("faithful.jsonl") if row["strategy"] == "hybrid"]
    with_past = [
        row for row in hybrid if any(item["evidence"]["because_of"] for item in row["items"])
    ]
    assert len(with_past) >= len(hybrid) * 0.9
