"""The whitelist check: supported answers pass, each kind of unsupported claim is caught and
named. The generated corpora (test_corpora.py) measure the rates; these pin the behaviour."""

from __future__ import annotations

import json

import pytest

from backend.llm import check as c
from backend.llm.check import CheckLimits, check_answer
from tests.llm.fakes import GOOD_INTRO, GOOD_REASONS, ITEMS, REQUEST, answer, vocabulary

SYSTEM = (
    "You are Shopwise, a friendly shopping assistant who explains product recommendations.\n"
    "- Use only the facts given for each product: its name, category, price, tags and "
    "evidence. Never invent prices, numbers, discounts, features, colours, materials."
)
VOCAB = vocabulary()
FACTS = REQUEST.facts()


def run(text: str, **kwargs: object) -> c.CheckResult:
    options: dict[str, object] = {
        "user_name": REQUEST.user_name,
        "summary": REQUEST.summary,
        "system_prompts": (SYSTEM,),
        "facts": FACTS,
    }
    options.update(kwargs)
    return check_answer(text, ITEMS, VOCAB, **options)  # type: ignore[arg-type]


def test_the_fact_ids_the_fakes_rely_on():
    lines = [f.line() for f in FACTS.products[0].facts]
    assert lines[0] == "F1: you bought the Studio Headphones"
    assert FACTS.products[1].facts[0].id == "F8"
    assert FACTS.products[2].facts[0].line() == "F12: you viewed the Hiking Boots"


def test_a_supported_answer_passes_and_keeps_the_order_and_the_citations():
    result = run(answer())
    assert result.ok, result.problems
    assert result.answer is not None
    assert [r.item.product.name for r in result.answer.reasons] == [i.product.name for i in ITEMS]
    assert result.answer.reasons[0].fact_ids == ("F1", "F3")
    assert result.answer.intro == GOOD_INTRO


@pytest.mark.parametrize(
    "text",
    [
        answer(P1=("Wireless audio at $59.99, for your love of Electronics.", ["F2", "F5"])),
        answer(P1=("True-wireless earbuds with Bluetooth pairing, a great audio pick.", [])),
        answer(P2=("The #1 favourite in the shop, 40 shoppers interacted with it.", ["F8"])),
        answer(P2=("A desk lamp with LED lighting, priced at $34.00.", ["F9"])),
        answer(P3=("In green, for camping, and it's in stock.", ["F17"])),
        answer({"1": GOOD_REASONS["P1"], "p2": GOOD_REASONS["P2"], "P3": GOOD_REASONS["P3"]}),
        "```json\n" + answer() + "\n```",
        answer(P1=("Alice, since you bought the Studio Headphones, these suit you.", ["F1"])),
        answer(intro=""),
        answer(
            intro="Welcome back, Alice! Recently purchased: Studio Headphones.",
            intro_fact_ids=["U1"],
        ),  # fmt: skip
        answer(P2="One of the most popular picks in the shop."),  # no ids: all its facts
    ],
)
def test_true_statements_pass(text):
    result = run(text)
    assert result.ok, result.problems


def test_uuid_product_ids_are_accepted():
    reasons = {str(i.product.id): r for i, r in zip(ITEMS, GOOD_REASONS.values(), strict=True)}
    assert run(answer(reasons)).ok


# (label, answer text, the code it must be caught with, the span the problem must quote)
PLANTED: list[tuple[str, str, str, str | None]] = [
    ("price not cited", answer(P1=("Only $59.99 for wireless audio.", ["F3"])),
     c.UNSUPPORTED_PRICE, "$59.99"),
    ("wrong price", answer(P1=("A steal at $49.99 for wireless audio.", ["F5"])),
     c.UNSUPPORTED_PRICE, "$49.99"),
    ("price in words", answer(P3=("Yours for 120 dollars.", ["F16"])), c.UNSUPPORTED_PRICE, "120"),
    ("discount", answer(P2=("Now 20% off for your desk.", ["F9"])), c.UNSUPPORTED_NUMBER, "20%"),
    ("sale word", answer(P2=("A desk lamp on sale this week.", ["F9"])),
     c.UNSUPPORTED_CLAIM, "sale this week"),
    ("shipping", answer(P2=("It ships free to your door.", ["F11"])),
     c.UNSUPPORTED_CLAIM, "ships free"),
    ("scarcity", answer(P3=("Hurry, only a handful left in stock.", ["F17"])),
     c.UNSUPPORTED_CLAIM, "Hurry"),
    ("stock without its fact", answer(P3=("A camping tent that is in stock.", ["F14"])),
     c.UNSUPPORTED_CLAIM, "stock"),
    ("rating", answer(P1=("Rated 4.8 by audio fans.", ["F3"])), c.UNSUPPORTED_CLAIM, "Rated"),
    ("reviews", answer(P1=("Reviewers rave about its audio.", ["F3"])),
     c.UNSUPPORTED_CLAIM, "Reviewers rave"),
    ("popularity without its fact", answer(P3=("A popular camping tent.", ["F14"])),
     c.UNSUPPORTED_CLAIM, "popular"),
    ("popularity the rank does not back", answer(P3=("A popular camping tent.", ["F15"])),
     c.UNSUPPORTED_CLAIM, "popular"),
    ("past purchase that never happened",
     answer(P3=("Since you bought a tent last summer, camping it is.", ["F14"])),
     c.UNSUPPORTED_CLAIM, "bought"),
    ("wrong action", answer(P1=("Like the Studio Headphones you viewed, wireless audio.", ["F1"])),
     c.WRONG_ACTION, "viewed"),
    ("time not in the fact", answer(P3=("You viewed the Hiking Boots yesterday.", ["F12"])),
     c.UNSUPPORTED_CLAIM, "yesterday"),
    ("material", answer(P3=("Made of sturdy nylon for camping.", ["F14"])),
     c.UNSUPPORTED_CLAIM, "sturdy nylon"),
    ("origin", answer(P2=("Designed in Denmark for your desk.", ["F11"])),
     c.UNSUPPORTED_CLAIM, "Denmark"),
    ("compatibility", answer(P1=("Compatible with every phone.", ["F3"])),
     c.UNSUPPORTED_CLAIM, "Compatible"),
    ("negation of a fact", answer(P3=("Not waterproof, but fine for camping.", ["F14"])),
     c.UNSUPPORTED_CLAIM, "Not"),
    ("what is included", answer(P1=("Comes with three sets of ear tips.", ["F3"])),
     c.UNSUPPORTED_CLAIM, "Comes"),
    ("novelty", answer(P2=("Brand new this season.", ["F11"])), c.UNSUPPORTED_CLAIM, "Brand new"),
    ("award", answer(P2=("An award-winning lamp design.", ["F11"])),
     c.UNSUPPORTED_CLAIM, "award-winning"),
    ("comparison", answer(P1=("Better than most earbuds at this price.", ["F3"])),
     c.UNSUPPORTED_CLAIM, "Better than"),
    ("another catalog product", answer(P1=("Pairs well with the Yoga Mat.", ["F3"])),
     c.UNSUPPORTED_PRODUCT, "Yoga Mat"),
    ("another recommended product", answer(P1=("Put it next to the Desk Lamp.", ["F3"])),
     c.UNSUPPORTED_PRODUCT, "Desk Lamp"),
    ("invented brand", answer(P2=("A Philips-grade lamp for late work.", ["F11"])),
     c.UNSUPPORTED_CLAIM, "Philips-grade"),
    ("wrong colour", answer(P1=("In sleek red, for wireless audio.", ["F3"])),
     c.UNSUPPORTED_CLAIM, "sleek red"),
    ("other product's fact", answer(P2=("Since you bought the Studio Headphones.", ["F1"])),
     c.UNKNOWN_FACT, "F1"),
    ("prompt echoed",
     answer(P2="Use only the facts given for each product: its name, category, price."),
     c.PROMPT_ECHO, None),
    ("fact id leak", answer(P3=("F14 says camping.", ["F14"])), c.PROMPT_LEAK, "F14"),
    ("markup", answer(P1=("<b>Wireless</b> audio.", ["F3"])), c.PROMPT_LEAK, "<"),
    ("intro invents a sale", answer(intro="Hi Alice, everything is 30% off today!"),
     c.UNSUPPORTED_NUMBER, "30%"),
    ("intro states an uncited fact", answer(intro="Hi Alice, since you bought headphones..."),
     c.UNSUPPORTED_CLAIM, "bought headphones"),
    ("missing product", answer({"P1": GOOD_REASONS["P1"], "P2": GOOD_REASONS["P2"]}),
     c.MISSING_PRODUCT, None),
    ("extra product", answer({**GOOD_REASONS, "P4": "A bonus pick."}), c.UNKNOWN_PRODUCT, None),
    ("duplicate product",
     json.dumps({"intro": GOOD_INTRO, "reasons": [
         {"product_id": k, "reason": v[0]} for k, v in [*GOOD_REASONS.items(), ("P1", ("x",))]
     ]}), c.DUPLICATE_PRODUCT, None),
    ("not JSON", "Hi Alice! You'll love the Wireless Earbuds.", c.NOT_JSON, None),
    ("truncated JSON", answer()[:-20], c.NOT_JSON, None),
    ("wrong shape", json.dumps({"intro": "Hi", "reasons": {"P1": "x"}}), c.BAD_SHAPE, None),
    ("empty reason", answer(P2="   "), c.EMPTY_REASON, None),
    ("over-long reason", answer(P1=" ".join(["wireless audio for you"] * 20)), c.TOO_LONG, None),
]  # fmt: skip


@pytest.mark.parametrize(("label", "text", "code", "span"), PLANTED, ids=[p[0] for p in PLANTED])
def test_each_planted_claim_fails_naming_the_unsupported_span(label, text, code, span):
    result = run(text)
    assert not result.ok and result.answer is None
    assert code in result.reasons, result.problems
    if span is not None:
        spans = [p.span or "" for p in result.problems if p.code == code]
        assert any(span in s or s in span for s in spans if s), (span, result.problems)
    assert all(p.detail for p in result.problems)


def test_problems_name_the_product_they_concern():
    result = run(answer(P1=("Yours at $49.99.", ["F5"])))
    (problem,) = result.problems
    assert problem.product_id == str(ITEMS[0].product.id)
    assert problem.span == "$49.99"
    assert "Wireless Earbuds" in problem.detail


def test_limits_are_configurable():
    assert c.TOO_LONG in run(answer(), limits=CheckLimits(max_reason_words=5)).reasons


def test_the_answer_schema_is_strict():
    schema = c.answer_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"intro", "intro_fact_ids", "reasons"}
    reason = schema["$defs"]["GroundedReason"]
    assert reason["additionalProperties"] is False
    assert set(reason["required"]) == {"product_id", "reason", "fact_ids"}
