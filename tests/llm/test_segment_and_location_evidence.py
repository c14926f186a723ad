"""The segment and location evidence kinds, "shoppers like you" and "near you", in the template
explanation and in the evidence check of LLM answers."""

from __future__ import annotations

import json

import pytest

from backend.config import PROJECT_ROOT
from backend.llm.check import UNSUPPORTED_NUMBER, check_answer
from backend.llm.explainer import TemplateExplainer
from backend.llm.facts import build_facts
from backend.llm.prompts import PromptLibrary
from backend.llm.writer import ExplainedItem, ExplanationRequest
from backend.recommender.evidence import Evidence, Nearby, SegmentMatch, SourceShare
from tests.llm.fakes import LAMP, TENT, vocabulary

SEGMENT = Evidence(
    strategy="hybrid",
    score=1.0,
    sources=[
        SourceShare(
            name="segment",
            share=1.0,
            detail="popular with shoppers like you (Sports & Outdoors · premium)",
        )
    ],
    popularity_rank=25,
    interaction_count=2,
    segment=SegmentMatch(segment=1, label="Sports & Outdoors · premium", shoppers=9, size=12),
)
NEAR = Evidence(
    strategy="hybrid",
    score=0.8,
    sources=[
        SourceShare(name="popularity", share=0.6, detail="popular in the shop"),
        SourceShare(name="location", share=0.4, detail="near you (1.1 km)"),
    ],
    popularity_rank=30,
    interaction_count=1,
    nearby=Nearby(distance_km=1.1, radius_km=25.0),
)
ITEMS = (ExplainedItem(TENT, SEGMENT), ExplainedItem(LAMP, NEAR))


def test_the_template_states_the_segment_and_the_distance():
    text = (
        TemplateExplainer(PromptLibrary(PROJECT_ROOT / "prompts"))
        .explain(ExplanationRequest(user_name="Noor", summary="", items=ITEMS))
        .text
    )
    tent, lamp = text.splitlines()[1:]
    assert "popular with shoppers like you (Sports & Outdoors · premium): 9 of 12 chose it" in tent
    assert lamp.endswith("and it is near you (1.1 km).")


def test_the_llm_sees_the_new_evidence_as_facts():
    sheet = build_facts(ITEMS)
    tent = [f.text for f in sheet.products[0].facts]
    lamp = [f.text for f in sheet.products[1].facts]
    assert "9 of 12 shoppers like you (Sports & Outdoors · premium) chose it" in tent
    assert "offered 1.1 km from you" in lamp


def check(tent: str, lamp: str):
    text = json.dumps(
        {
            "intro": "Hi Noor, two picks for you.",
            "reasons": [
                {"product_id": "P1", "reason": tent},
                {"product_id": "P2", "reason": lamp},
            ],
        }
    )
    return check_answer(text, ITEMS, vocabulary(), user_name="Noor")


def test_claims_backed_by_the_new_evidence_pass():
    result = check(
        "Popular with shoppers like you: 9 of 12 Sports & Outdoors shoppers chose it.",
        "A popular lamp you can pick up near you, just 1.1 km away.",
    )
    assert result.ok, result.describe()


@pytest.mark.parametrize(
    ("tent", "lamp"),
    [
        ("Popular with shoppers like you: 14 of them chose it.", "Near you."),
        ("Shoppers like you chose it.", "A lamp just 3 km from you."),
    ],
)
def test_numbers_not_in_the_new_evidence_fail(tent, lamp):
    result = check(tent, lamp)
    assert not result.ok
    assert UNSUPPORTED_NUMBER in result.reasons
