"""False alarms on real data: true reasons written from the evidence pass the check.

The demo catalog (348 products, 13 categories, colour and feature tags) and every demo user's
real recommendations: a reason that only restates the evidence must never be rejected, or the
check would push good LLM answers to the template for nothing.
"""

from __future__ import annotations

import json
import uuid

import pytest

from backend.config import PROJECT_ROOT
from backend.db.seed import seed_engine_data
from backend.llm.check import CheckVocabulary, check_answer, item_ref
from backend.llm.writer import ExplainedItem
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies import (
    PopularityStrategy,
    RecommendRequest,
    RulesStrategy,
    WeightedStrategy,
)

SEED = PROJECT_ROOT / "seed_data"
VERB = {"purchase": "bought", "view": "viewed", "click": "viewed", "wishlist": "wishlisted",
        "add_to_cart": "added to your cart", "remove_from_cart": "had in your cart"}  # fmt: skip


@pytest.fixture(scope="module")
def seed() -> tuple[CatalogSnapshot, dict[uuid.UUID, list[InteractionRecord]], dict[str, str]]:
    return seed_engine_data(SEED)


def true_reasons(item: ExplainedItem) -> list[str]:
    ev, p = item.evidence, item.product
    out = [f"A {p.category} pick at ${p.price:.2f}.", f"Priced at {p.price} dollars."]
    tags = [t.name.replace("-", " ") for t in ev.matched_tags[:3]]
    if ev.matched_categories or tags:
        interest = " and ".join(
            [*(c.name for c in ev.matched_categories[:1]), *([", ".join(tags)] if tags else [])]
        )
        reason = f"It matches your interest in {interest}"
        if ev.because_of:
            past = ev.because_of[0]
            reason += f", like the {past.product_name} you {VERB[past.action]}"
        out.append(reason + ".")
    else:
        out.append(f"One of the most popular products right now, #{ev.popularity_rank} here.")
    return out


@pytest.mark.parametrize("strategy", [RulesStrategy(), WeightedStrategy(), PopularityStrategy()])
def test_true_reasons_pass_for_every_demo_user(seed, strategy):
    snapshot, history, names = seed
    vocabulary = CheckVocabulary.build(snapshot.products)
    now = max(r.created_at for records in history.values() for r in records)
    checked = failures = 0
    problems = []
    for user_id, records in history.items():
        recs = strategy.recommend(snapshot, RecommendRequest(records, top_n=5, now=now))
        items = [ExplainedItem(snapshot.products[r.index], r.evidence) for r in recs]
        for variant in range(3):
            text = json.dumps(
                {
                    "intro": f"Hi {names[str(user_id)]}, here are {len(items)} picks for you.",
                    "reasons": [
                        {"product_id": item_ref(i), "reason": true_reasons(item)[variant]}
                        for i, item in enumerate(items)
                    ],
                }
            )
            result = check_answer(text, items, vocabulary, user_name=names[str(user_id)])
            checked += 1
            if not result.ok:
                failures += 1
                problems.extend(result.describe())
    assert checked > 100
    assert failures == 0, problems[:10]
