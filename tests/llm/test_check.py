"""The evidence check: supported answers pass, planted bad answers are caught, with reasons."""

from __future__ import annotations

import json

import pytest

from backend.llm import check as c
from backend.llm.check import CheckLimits, CheckVocabulary, check_answer
from tests.llm.fakes import GOOD_INTRO, GOOD_REASONS, ITEMS, REQUEST, answer, vocabulary

SYSTEM = (
    "You are Shopwise, a friendly shopping assistant who explains product recommendations.\n"
    "- Use only the facts given for each product: its name, category, price, tags and "
    "evidence. Never invent prices, numbers, discounts, features, colours, materials."
)
VOCAB = vocabulary()


def run(text: str, **kwargs: object) -> c.CheckResult:
    options: dict[str, object] = {
        "user_name": REQUEST.user_name,
        "summary": REQUEST.summary,
        "system_prompts": (SYSTEM,),
    }
    options.update(kwargs)
    return check_answer(text, ITEMS, VOCAB, **options)  # type: ignore[arg-type]


def test_a_supported_answer_passes_and_keeps_the_order_of_the_items():
    result = run(answer())
    assert result.ok, result.problems
    assert result.answer is not None
    assert [r.item.product.name for r in result.answer.reasons] == [i.product.name for i in ITEMS]
    assert result.answer.intro == GOOD_INTRO


@pytest.mark.parametrize(
    "text",
    [
        # the product's own facts, said in other words
        answer(P1="Wireless audio at $59.99, matching your love of Electronics."),
        answer(P1="The true-wireless design with Bluetooth pairing suits your audio taste."),
        answer(P2="Shoppers' #1 favourite: a desk lamp with LED lighting, now $34."),
        answer(P2="Popular with 40 shoppers and priced at 34.00 dollars."),
        answer(P3="Rated for camping, in green, and it's in stock."),
        # ids in any accepted form, fenced JSON, the user's name anywhere
        answer({"1": GOOD_REASONS["P1"], "p2": GOOD_REASONS["P2"], "P3": GOOD_REASONS["P3"]}),
        "```json\n" + answer() + "\n```",
        answer(P1="Alice, since you bought the Studio Headphones, these fit your audio taste."),
        answer(intro=""),
        answer(intro="Welcome back, Alice! You recently viewed Hiking Boots, so here goes."),
        answer(P2="Light up your desk at home with a favourite of the shop."),
    ],
)
def test_true_statements_in_other_words_pass(text):
    result = run(text)
    assert result.ok, result.problems


def test_uuid_product_ids_are_accepted():
    reasons = {str(i.product.id): r for i, r in zip(ITEMS, GOOD_REASONS.values(), strict=True)}
    assert run(answer(reasons)).ok


# --- the adversarial set ------------------------------------------------------------------
# (label, answer text, the reason code it must be caught with)
ADVERSARIAL: list[tuple[str, str, str]] = [
    ("invented product from the catalog", answer(P1="Pairs well with the Yoga Mat you love."),
     c.UNSUPPORTED_PRODUCT),
    ("invented product outside the catalog",
     answer(P1="Pairs nicely with the Zentrix Soundbar for movie nights."), c.UNSUPPORTED_NAME),
    ("invented brand", answer(P2="A Philips-grade lamp for late work."), c.UNSUPPORTED_NAME),
    ("reason not in evidence: other past product",
     answer(P3="Because you bought the Cast Iron Skillet last week."), c.UNSUPPORTED_PRODUCT),
    ("cross-reference to another recommended product",
     answer(P1="Works even better next to the Desk Lamp on your nightstand."),
     c.UNSUPPORTED_PRODUCT),
    ("wrong price", answer(P1="A steal at $49.99 for wireless audio."), c.UNSUPPORTED_PRICE),
    ("rounded price", answer(P2="Just about $35, a bargain for your desk."), c.UNSUPPORTED_PRICE),
    ("price in words", answer(P3="Yours for 120 dollars."), c.UNSUPPORTED_PRICE),
    ("price in euros", answer(P3="Only €99 for a waterproof tent."), c.UNSUPPORTED_PRICE),
    ("discount percentage", answer(P2="Now 20% off for a limited time."), c.UNSUPPORTED_NUMBER),
    ("invented rating", answer(P1="Rated 4.8 by wireless audio fans."), c.UNSUPPORTED_NUMBER),
    ("number word", answer(P3="Comes in five colours for camping."), c.UNSUPPORTED_NUMBER),
    ("invented year", answer(P2="The 2024 edition of this lamp."), c.UNSUPPORTED_NUMBER),
    ("scarcity number", answer(P3="Only 4 left for your next camping trip."), c.UNSUPPORTED_NUMBER),
    ("missing product", answer({"P1": GOOD_REASONS["P1"], "P2": GOOD_REASONS["P2"]}),
     c.MISSING_PRODUCT),
    ("extra product by ref", answer({**GOOD_REASONS, "P4": "A bonus pick for you."}),
     c.UNKNOWN_PRODUCT),
    ("extra product by id",
     answer({**GOOD_REASONS, "3f1c2b9e-0000-4000-8000-000000000000": "Also great."}),
     c.UNKNOWN_PRODUCT),
    ("duplicate product",
     json.dumps({"intro": GOOD_INTRO, "reasons": [
         {"product_id": k, "reason": v} for k, v in [*GOOD_REASONS.items(), ("P1", "Again!")]
     ]}), c.DUPLICATE_PRODUCT),
    ("wrong category", answer(P1="A top Kitchen gadget for wireless audio."),
     c.UNSUPPORTED_CATEGORY),
    ("wrong multi-word category", answer(P2="Great for Sports & Outdoors fans."),
     c.UNSUPPORTED_CATEGORY),
    ("invented colour", answer(P1="In sleek red, for wireless audio."), c.UNSUPPORTED_ATTRIBUTE),
    ("invented attribute tag", answer(P2="Its wireless design keeps your desk tidy."),
     c.UNSUPPORTED_ATTRIBUTE),
    ("invented material", answer(P3="Made of bamboo for camping."), c.UNSUPPORTED_CLAIM),
    ("invented material tag", answer(P3="Made of leather for camping."), c.UNSUPPORTED_ATTRIBUTE),
    ("marketing claim", answer(P1="A bestseller for wireless audio fans."), c.UNSUPPORTED_CLAIM),
    ("shipping claim", answer(P2="Comes with free shipping to your door."), c.UNSUPPORTED_CLAIM),
    ("popularity claim without evidence", answer(P3="A popular tent for camping."),
     c.UNSUPPORTED_CLAIM),
    ("wrong action", answer(P1="Like the Studio Headphones you viewed, wireless audio."),
     c.WRONG_ACTION),
    ("prompt text echoed",
     answer(P2="Use only the facts given for each product: its name, category, price."),
     c.PROMPT_ECHO),
    ("evidence dump", answer(P3='evidence: {"matched_tags": ["camping"]}'), c.PROMPT_LEAK),
    ("product_id leak", answer(P1="product_id=P1 fits wireless audio."), c.PROMPT_LEAK),
    ("ref leak", answer(P2="P2 is the one for your desk."), c.PROMPT_LEAK),
    ("meta talk", answer(P3="As an AI language model I think this tent fits."), c.PROMPT_LEAK),
    ("markup", answer(P1="<b>Wireless</b> audio for you."), c.PROMPT_LEAK),
    ("rules leak", answer(P2="Following my instructions, this fits your desk."), c.PROMPT_LEAK),
    ("over-long reason", answer(P1=" ".join(["wireless audio for you"] * 20)), c.TOO_LONG),
    ("over-long intro", answer(intro=" ".join(["Hi Alice,"] * 40)), c.TOO_LONG),
    ("over-long answer", answer(P3="camping " * 1000), c.TOO_LONG),
    ("not JSON", "Hi Alice! You'll love the Wireless Earbuds and the Desk Lamp.", c.NOT_JSON),
    ("truncated JSON", answer()[:-20], c.NOT_JSON),
    ("wrong shape: reasons as a dict",
     json.dumps({"intro": "Hi", "reasons": GOOD_REASONS}), c.BAD_SHAPE),
    ("wrong shape: a list", json.dumps(list(GOOD_REASONS.values())), c.BAD_SHAPE),
    ("empty reason", answer(P2="   "), c.EMPTY_REASON),
    ("intro invents a product", answer(intro="Hi Alice! Also check out the Yoga Mat."),
     c.UNSUPPORTED_PRODUCT),
    ("intro invents a sale", answer(intro="Hi Alice, everything is 30% off today!"),
     c.UNSUPPORTED_NUMBER),
    ("stock claim", answer(P1="Back in stock, wireless audio for you."), c.UNSUPPORTED_CLAIM),
]  # fmt: skip


def test_the_adversarial_set_is_large_enough():
    assert len(ADVERSARIAL) >= 30
    assert len({label for label, _, _ in ADVERSARIAL}) == len(ADVERSARIAL)


def test_at_least_99_percent_of_planted_bad_answers_are_caught_with_the_right_reason():
    missed = [label for label, text, _ in ADVERSARIAL if run(text).ok]
    wrong_reason = [
        (label, run(text).reasons)
        for label, text, code in ADVERSARIAL
        if code not in run(text).reasons
    ]
    caught = 1 - len(missed) / len(ADVERSARIAL)
    assert caught >= 0.99, f"missed: {missed}"
    assert not wrong_reason


@pytest.mark.parametrize(("label", "text", "code"), ADVERSARIAL, ids=[a[0] for a in ADVERSARIAL])
def test_each_planted_answer_fails_with_a_readable_problem(label, text, code):
    result = run(text)
    assert not result.ok
    assert result.answer is None  # nothing to render from
    assert code in result.reasons
    assert all(p.detail for p in result.problems)


def test_problems_name_the_product_they_concern():
    result = run(answer(P1="A steal at $49.99."))
    (problem,) = result.problems
    assert problem.product_id == str(ITEMS[0].product.id)
    assert "Wireless Earbuds" in problem.detail and "$49.99" in problem.detail


def test_limits_are_configurable():
    short = CheckLimits(max_reason_words=5)
    assert c.TOO_LONG in run(answer(), limits=short).reasons


def test_ambiguous_category_words_count_only_when_capitalised():
    assert run(answer(P1="Wireless audio for home and away.")).ok
    assert c.UNSUPPORTED_CATEGORY in run(answer(P1="A Home favourite for audio.")).reasons


def test_known_blind_spot_a_claim_in_words_outside_the_vocabulary_passes():
    """Documented limit: the check knows catalog names, categories, tags, colours, numbers
    and a list of claim words. A claim in other words ("the battery lasts all day") passes;
    the prompt forbids it, and the vocabulary is where to extend the check."""
    assert run(answer(P1="Its battery lasts all day and sounds amazing.")).ok


def test_vocabulary_kinds_prefer_product_over_category_over_attribute():
    vocab = CheckVocabulary.build(ITEMS[0:1] and [i.product for i in ITEMS])
    assert vocab.phrases[("wireless", "earbud")] == "product"
    assert vocab.phrases[("electronic",)] == "category"  # also a tag
    assert vocab.phrases[("sport", "outdoor")] == "category"
    assert vocab.phrases[("red",)] == "attribute"
    assert vocab.phrases[("free", "shipping")] == "claim"
