"""The per-request answer schema that a grammar-constrained server (llama.cpp) enforces.

Known answer: the schema of the fakes' three-product request. Generated cases: random
mutations of a good answer (a product dropped, repeated, renamed or moved; a fact id of
another product or none at all; an over-long reason). The schema must refuse every mutation
that the evidence check would refuse for its shape, and anything the schema admits must never
fail the check for a shape reason. llama.cpp must compile the schema into a grammar.
"""

from __future__ import annotations

import copy
import json
import random
from importlib.util import find_spec

import jsonschema
import pytest

from backend.llm import check as c
from backend.llm.check import check_answer
from backend.llm.writer import CHARS_PER_WORD, REASON_WORDS, answer_schema_for
from tests.llm.fakes import GOOD_INTRO, GOOD_REASONS, ITEMS, REQUEST, vocabulary

FACTS = REQUEST.facts()
GRAMMAR = answer_schema_for(FACTS).grammar
SHAPE_REASONS = {c.MISSING_PRODUCT, c.UNKNOWN_PRODUCT, c.DUPLICATE_PRODUCT}
VOCAB = vocabulary()


def good() -> dict:
    return {
        "intro": GOOD_INTRO,
        "intro_fact_ids": [],
        "reasons": [
            {"product_id": ref, "reason": text, "fact_ids": ids}
            for ref, (text, ids) in GOOD_REASONS.items()
        ],
    }


def admitted(answer: dict) -> bool:
    try:
        jsonschema.validate(answer, GRAMMAR, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return False
    return True


def checked(answer: dict) -> c.CheckResult:
    return check_answer(
        json.dumps(answer),
        ITEMS,
        VOCAB,
        user_name=REQUEST.user_name,
        summary=REQUEST.summary,
        system_prompts=(),
        facts=FACTS,
    )


def test_the_schema_of_a_known_request():
    assert GRAMMAR is not None
    reasons = GRAMMAR["properties"]["reasons"]
    assert (reasons["minItems"], reasons["maxItems"]) == (3, 3)
    assert [r["properties"]["product_id"] for r in reasons["prefixItems"]] == [
        {"const": "P1"},
        {"const": "P2"},
        {"const": "P3"},
    ]
    p2 = reasons["prefixItems"][1]["properties"]
    # Its own facts only (a reason citing the request's U1 fails the check: unknown_fact).
    assert p2["fact_ids"]["items"]["enum"] == ["F8", "F9", "F10", "F11"]
    assert GRAMMAR["properties"]["intro_fact_ids"]["items"]["enum"] == ["U1"]
    assert p2["reason"]["maxLength"] == REASON_WORDS * CHARS_PER_WORD
    # The strict schema OpenAI gets is unchanged.
    assert answer_schema_for(FACTS).schema == c.answer_schema()


def test_a_good_answer_is_admitted_and_passes():
    assert admitted(good())
    assert checked(good()).ok


def mutate(rng: random.Random) -> tuple[str, dict]:
    answer = good()
    reasons = answer["reasons"]
    kinds = ["drop", "repeat", "rename", "swap", "foreign_fact", "request_fact", "long", "extra"]
    kind = rng.choice(kinds)
    i = rng.randrange(len(reasons))
    if kind == "drop":
        del reasons[i]
    elif kind == "repeat":
        reasons.insert(rng.randrange(len(reasons) + 1), copy.deepcopy(reasons[i]))
    elif kind == "rename":
        reasons[i]["product_id"] = rng.choice(["P4", "P0", "X1", ""])  # the check reads "1" as P1
    elif kind == "swap":
        j = (i + rng.randrange(1, len(reasons))) % len(reasons)
        reasons[i]["product_id"], reasons[j]["product_id"] = (
            reasons[j]["product_id"],
            reasons[i]["product_id"],
        )
    elif kind == "foreign_fact":
        own = reasons[i]["product_id"]
        others = [f.id for p in FACTS.products if p.ref != own for f in p.facts]
        reasons[i]["fact_ids"] = [rng.choice(others)]
    elif kind == "request_fact":
        reasons[i]["fact_ids"] = [FACTS.request[0].id]
    elif kind == "long":
        reasons[i]["reason"] = "word " * (REASON_WORDS * CHARS_PER_WORD // 5 + 1)
    else:
        reasons.append({"product_id": "P9", "reason": "Extra.", "fact_ids": []})
    return kind, answer


@pytest.mark.parametrize("seed", range(200))
def test_the_schema_refuses_what_the_check_refuses_for_its_shape(seed):
    kind, answer = mutate(random.Random(seed))
    assert not admitted(answer), kind
    if kind in {"drop", "repeat", "rename", "extra"}:
        assert SHAPE_REASONS & set(checked(answer).reasons), kind
    if kind in {"foreign_fact", "request_fact"}:
        assert c.UNKNOWN_FACT in checked(answer).reasons, kind


@pytest.mark.parametrize("seed", range(100))
def test_whatever_the_schema_admits_has_no_shape_failure(seed):
    rng = random.Random(seed)
    answer = good()
    for reason in answer["reasons"]:  # any admitted citations and texts
        allowed = GRAMMAR["properties"]["reasons"]["prefixItems"][answer["reasons"].index(reason)][
            "properties"
        ]["fact_ids"]["items"]["enum"]
        reason["fact_ids"] = rng.sample(allowed, rng.randint(0, min(4, len(allowed))))
        reason["reason"] = rng.choice(["Nice.", "A good pick for you.", reason["reason"]])
    assert admitted(answer)
    assert not SHAPE_REASONS & set(checked(answer).reasons)


@pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_compiles_the_schema_into_a_grammar():
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    grammar = json_schema_to_gbnf(json.dumps(GRAMMAR))
    assert '"\\"P1\\""' in grammar and '"\\"F8\\""' in grammar
