"""Synthetic shoppers meet two variants through the real service; the report must find the
truly better one (and find nothing in an A/A test).

Each shopper likes one category (their history is three views in it). Shown a product,
they click with probability 0.15 when it is from their category and 0.05 otherwise, and buy
a third of what they click. The ``rules`` strategy recommends from the shopper's categories;
``popularity`` does not, so its true click-through is far lower (about 0.075 against 0.15).
Everything is seeded: the outcome is the same on every run.
"""

from __future__ import annotations

import random

from backend.experiments.model import ExperimentCreate
from tests.experiments.conftest import build_synthetic_shop

USERS = 240
TOP_N = 6
P_LIKED, P_OTHER, P_BUY = 0.15, 0.05, 1 / 3


def run(components, shoppers, variants, seed):
    rng = random.Random(seed)
    experiment = components.experiments.create(
        ExperimentCreate.model_validate({"name": f"sim-{seed}", "variants": variants})
    )
    events, served = [], {}
    for user_id, liked in shoppers.favourite.items():
        result = components.recommender.recommend(user_id, top_n=TOP_N)
        assert result.experiment is not None and result.experiment.id == experiment.id
        served[result.experiment.variant] = served.get(result.experiment.variant, 0) + 1
        for product in result.recommended_products:
            p = P_LIKED if shoppers.category[product.id] == liked else P_OTHER
            if rng.random() < p:
                events.append({"user_id": user_id, "action": "click", "product_id": product.id})
                if rng.random() < P_BUY:
                    events.append(
                        {"user_id": user_id, "action": "purchase", "product_id": product.id}
                    )
    assert components.impressions.flush() == USERS * TOP_N
    batch = components.tracker.track_many(events)
    assert batch.accepted == len(events)
    return experiment, served, components.experiments.report(experiment.id)


def test_the_better_variant_wins_with_confidence(sim_components):
    shoppers = build_synthetic_shop(sim_components.db, USERS)
    variants = [
        {"name": "A", "share": 0.5, "strategy": "popularity"},
        {"name": "B", "share": 0.5, "strategy": "rules"},
    ]
    _, served, report = run(sim_components, shoppers, variants, seed=11)
    assert set(served) == {"A", "B"} and abs(served["A"] - served["B"]) < USERS * 0.2
    a, b = report.variants
    assert (a.variant, b.variant) == ("A", "B")
    assert a.users + b.users == USERS
    assert a.impressions + b.impressions == USERS * TOP_N
    assert b.ctr > a.ctr
    assert 0.10 < b.ctr < 0.20 and 0.04 < a.ctr < 0.11  # near the true rates
    assert b.ctr_ci[0] < b.ctr < b.ctr_ci[1]
    assert b.purchases > 0 and 0 < b.conversion <= 1
    assert report.best_variant == "B"
    assert report.p_value is not None and report.p_value < 0.05
    assert report.confident is True
    assert report.confidence_level == 0.95


def test_an_a_a_test_finds_no_winner(sim_components):
    shoppers = build_synthetic_shop(sim_components.db, USERS)
    variants = [
        {"name": "A", "share": 0.5, "strategy": "rules"},
        {"name": "A-again", "share": 0.5, "strategy": "rules"},
    ]
    _, _, report = run(sim_components, shoppers, variants, seed=11)
    assert sum(v.impressions for v in report.variants) == USERS * TOP_N
    assert report.confident is False
    assert report.p_value is not None and report.p_value > 0.05
