"""The cached copy of a fresh answer is its JSON with ``cached`` edited: byte for byte what
serialising the result with ``cached: true`` gives, whatever its strings contain."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backend.experiments.model import ExperimentRef
from backend.recommender.evidence import Evidence, PastInteraction, SourceShare
from backend.services.schemas import RecommendationResult, RecommendedProduct, cached_json

# Strings that look like the field, escaped or not, and JSON's other special characters.
NASTY = [
    '"cached":false',
    '{"cached":false}',
    '\\"cached\\":false',
    "cached: false",
    'a"b\\c\n\t\u2028é🙂',
    "",
]


def result(rng: random.Random) -> RecommendationResult:
    def text() -> str:
        return "".join(rng.sample(NASTY, rng.randint(1, 3)))

    products = [
        RecommendedProduct(
            id=uuid.uuid4(),
            name=text(),
            category=text(),
            price=Decimal(rng.randint(1, 99_999)) / 100,
            image_url=rng.choice([None, text()]),
            in_stock=rng.random() < 0.5,
            score=round(rng.random(), 4),
            evidence=Evidence(
                strategy=text(),
                score=rng.random(),
                sources=[SourceShare(name=text(), share=0.5, detail=text())],
                because_of=[
                    PastInteraction(product_id=uuid.uuid4(), product_name=text(), action=text())
                ],
                popularity_rank=rng.randint(1, 99),
                interaction_count=rng.randint(0, 99),
            ),
        )
        for _ in range(rng.randint(0, 4))
    ]
    return RecommendationResult(
        user_id=uuid.uuid4(),
        user_name=text(),
        recommended_products=products,
        llm_explanation=text(),
        explanation_source=rng.choice(["llm", "template"]),
        explanation_status=rng.choice(["ready", "pending", "template"]),
        explanation_stream=rng.choice([None, text()]),
        fallback_reason=rng.choice([None, text()]),
        user_behavior_summary=text(),
        algorithm=text(),
        generated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        experiment=rng.choice([None, ExperimentRef(id=uuid.uuid4(), name=text(), variant=text())]),
    )


@pytest.mark.parametrize("seed", range(60))
def test_the_cached_copy_is_the_result_serialised_with_cached_true(seed: int):
    fresh = result(random.Random(seed))
    body = fresh.model_dump_json()
    expected = fresh.model_copy(update={"cached": True}).model_dump_json()
    assert cached_json(fresh, body) == expected
    assert RecommendationResult.model_validate_json(expected).cached


def test_an_answer_already_marked_cached_is_serialised_as_it_is():
    marked = result(random.Random(1)).model_copy(update={"cached": True})
    assert cached_json(marked, marked.model_dump_json()) == marked.model_dump_json()
