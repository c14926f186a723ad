"""The offline explanation: from evidence only, one line per product, strict templates."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from backend.config import PROJECT_ROOT
from backend.llm.explainer import TemplateExplainer
from backend.llm.prompts import PromptError, PromptLibrary
from backend.llm.writer import ExplainedItem, ExplanationRequest
from backend.recommender.evidence import Evidence, PastInteraction, SourceShare, WeightedMatch
from backend.recommender.snapshot import ProductRecord


def item(name: str, category: str, evidence: Evidence) -> ExplainedItem:
    product = ProductRecord(
        id=uuid.uuid4(), name=name, category=category, price=Decimal("59.99"), quantity=3, tags=()
    )
    return ExplainedItem(product=product, evidence=evidence)


MATCHED = Evidence(
    strategy="weighted",
    score=1.0,
    sources=[SourceShare(name="weighted", share=1.0, detail="profile match")],
    matched_categories=[WeightedMatch(name="Sports & Outdoors", weight=0.6)],
    matched_tags=[
        WeightedMatch(name="sports-outdoors", weight=0.2),
        WeightedMatch(name="waterproof", weight=0.1),
    ],
    because_of=[
        PastInteraction(product_id=uuid.uuid4(), product_name="The Trail Guide", action="purchase")
    ],
    popularity_rank=20,
    interaction_count=3,
)
POPULAR = Evidence(
    strategy="weighted",
    score=0.0,
    sources=[SourceShare(name="popularity", share=1.0, detail="popular")],
    popularity_rank=2,
    interaction_count=40,
)


@pytest.fixture
def explainer() -> TemplateExplainer:
    return TemplateExplainer(PromptLibrary(PROJECT_ROOT / "prompts"))


def test_one_line_per_product_with_reasons_from_evidence(explainer):
    request = ExplanationRequest(
        user_name="Amara",
        summary="",
        items=(
            item("Trail Tent", "Sports & Outdoors", MATCHED),
            item("Desk Lamp", "Home", POPULAR),
        ),
    )
    explanation = explainer.explain(request)
    lines = explanation.text.splitlines()
    assert explanation.source == "template"
    assert lines[0] == "Hi Amara! Here are 2 picks for you:"
    assert lines[1] == (
        "- Trail Tent (Sports & Outdoors, $59.99): it matches your interest in Sports & Outdoors"
        " and waterproof products, like The Trail Guide you bought."
    )
    assert lines[2] == (
        "- Desk Lamp (Home, $59.99): one of the most popular products in the shop right now"
        " (#2 by shopper activity)."
    )


def test_strict_undefined_fails_loudly(tmp_path: Path):
    (tmp_path / "broken.j2").write_text("Hello {{ missing_variable }}")
    with pytest.raises(PromptError, match="missing_variable"):
        PromptLibrary(tmp_path).render("broken.j2")


def test_edited_template_takes_effect_without_restart(tmp_path: Path):
    path = tmp_path / "greeting.j2"
    path.write_text("Hello {{ name }}")
    now = [100.0]
    library = PromptLibrary(tmp_path, file_check_seconds=1.0, monotonic=lambda: now[0])
    assert library.render("greeting.j2", name="Ann") == "Hello Ann"
    path.write_text("Welcome back, {{ name }}")
    import os

    os.utime(path, (path.stat().st_mtime + 5, path.stat().st_mtime + 5))
    # The file's time is looked at once per second, not on every render.
    now[0] += 0.5
    assert library.render("greeting.j2", name="Ann") == "Hello Ann"
    now[0] += 0.6
    assert library.render("greeting.j2", name="Ann") == "Welcome back, Ann"


def test_hybrid_evidence_is_explained_by_similarity_and_co_interactions(explainer):
    from backend.recommender.evidence import CoInteraction, SimilarItem

    grinder = uuid.uuid4()
    evidence = Evidence(
        strategy="hybrid",
        score=0.9,
        sources=[
            SourceShare(name="cf", share=0.7, detail="cf"),
            SourceShare(name="content", share=0.3, detail="c"),
        ],
        popularity_rank=150,
        interaction_count=4,
        similar_to=SimilarItem(product_id=grinder, product_name="Burr Grinder", similarity=0.71),
        co_interactions=[CoInteraction(product_id=uuid.uuid4(), product_name="Milk Jug", count=2)],
    )
    text = explainer.explain(
        ExplanationRequest(
            user_name="Diego", summary="", items=(item("Kettle", "Kitchen", evidence),)
        )
    ).text
    assert text.splitlines()[1] == (
        "- Kettle (Kitchen, $59.99): it is close to the Burr Grinder you showed interest in, and"
        " shoppers who chose the Milk Jug also chose this."
    )
    assert "popular" not in text
