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
import re
from dataclasses import replace
from importlib.util import find_spec

import jsonschema
import pytest

from backend.llm import check as c
from backend.llm.answer_grammar import (
    CHARS_PER_WORD,
    REASON_WORDS,
    answer_schema_for,
)
from backend.llm.check import CheckVocabulary, check_answer
from tests.llm.corpora.evaluate import load
from tests.llm.corpora.generate import products, request_of
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
    return admitted_by(answer, GRAMMAR)


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
    jsonschema.Draft202012Validator.check_schema(GRAMMAR)
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


# -- the facts grammar: each reason made of its facts, verbatim --------------------------------
# Requests of the demo shop: every shopper's top 5 under each strategy (the check corpus).
CATALOG = products()
CORPUS = load("faithful.jsonl")
VOCAB_DEMO = CheckVocabulary.build(CATALOG.values())


def facts_grammar(request) -> dict:
    return answer_schema_for(request.facts(), level="facts", shopper=request.user_name).grammar


def _alternatives(group: str) -> list[str]:
    """The texts one regex group of the pattern offers, read back from the pattern (so the
    test does not trust the code that built it): classes of one character unwrapped, the
    first letter's two cases both taken."""
    out = []
    for alt in group.split("|"):
        plain = re.sub(r"\[(.)\]", lambda m: m.group(1), alt[4:] if alt.startswith("[") else alt)
        if alt.startswith("[") and alt[3] == "]":
            out += [alt[1] + plain, alt[2] + plain]
        else:
            out.append(plain)
    return out


def _groups(pattern: str) -> list[str]:
    """The alternation groups of a pattern, in order (``(a|b|c)`` with no nested group)."""
    return [g for g in re.findall(r"\(((?:[^()\[]|\[[^\]]*\])*)\)", pattern) if "|" in g]


def _clauses(pattern: str) -> list[str]:
    """Every clause the pattern offers: the groups after the lead's and the joins'."""
    groups = _groups(pattern)[2:]  # the leads, the lead's separator
    return sorted({a for g in groups if not g.startswith(", and") for a in _alternatives(g)})


def random_reason(rng: random.Random, schema: dict) -> str:
    texts = _clauses(schema["pattern"])
    lead = ""
    if rng.random() < 0.5:
        lead = rng.choice(_alternatives(_groups(schema["pattern"])[0])) + rng.choice([", ", ": "])
    said = rng.choice(texts)
    if rng.random() < 0.6:
        other = rng.choice([t for t in texts if t.lower() != said.lower()])
        said += rng.choice([", and ", " and ", "; ", ". "]) + other
    return lead + said + rng.choice([".", "!"])


def random_intro(rng: random.Random, schema: dict, shopper: str) -> str:
    greeting = rng.choice(["Hi", "hello", "Hey", "Welcome back"])
    intro = f"{greeting} {shopper}{rng.choice('!,.')}"
    if rng.random() < 0.7:
        intro += " " + rng.choice(_alternatives(_groups(schema["pattern"])[-1]))
    return intro


def random_answer(rng: random.Random, grammar: dict, shopper: str) -> dict:
    props = grammar["properties"]
    return {
        "intro": random_intro(rng, props["intro"], shopper),
        "reasons": [
            {
                "product_id": r["properties"]["product_id"]["const"],
                "reason": random_reason(rng, r["properties"]["reason"]),
            }
            for r in props["reasons"]["prefixItems"]
        ],
    }


def test_the_facts_grammar_of_a_known_request():
    grammar = facts_grammar(REQUEST)
    jsonschema.Draft202012Validator.check_schema(grammar)
    p2 = grammar["properties"]["reasons"]["prefixItems"][1]["properties"]
    assert set(p2) == {"product_id", "reason"}  # no ids: judged against all its facts
    clauses = _clauses(p2["reason"]["pattern"])
    assert sorted(c for c in clauses if c[0].islower()) == sorted(
        f.clause for f in FACTS.products[1].facts if f.reason
    )
    pattern = re.compile(p2["reason"]["pattern"])
    clause = FACTS.products[1].facts[0].clause
    assert pattern.search(f"A great pick: {clause}.")
    assert not pattern.search(f"A great pick for you: {clause}.")  # only reviewed leads
    assert pattern.search(f"{clause[0].upper()}{clause[1:]}!")
    assert not pattern.search(f"{clause}")  # a sentence ends
    second = FACTS.products[1].facts[1].clause
    assert pattern.search(f"{clause}, and {second}.")
    assert not pattern.search(f"{clause} and {second} and {clause}.")  # two facts at most
    assert not pattern.search(f"{clause}. {clause[0].upper()}{clause[1:]}.")  # never twice
    other = FACTS.products[0].facts[0].clause
    assert not pattern.search(f"{other}.")  # another product's fact
    assert not pattern.search(f"we {clause.split(' ', 1)[1]}.")  # a fact reworded
    assert answer_schema_for(FACTS, level="facts").schema == c.answer_schema()
    intro = re.compile(grammar["properties"]["intro"]["pattern"])
    assert intro.search("Hi Alice Lee!") and intro.search(
        "Welcome back Alice Lee, here are 3 picks for you."
    )
    assert intro.search("hello Alice Lee. Take a look at these picks.")
    assert not intro.search("Hi alice Lee!")  # the name as the shop has it
    assert not intro.search("Hi Alice Lee! Here are 4 picks for you.")  # the count is 3


def test_the_facts_grammar_never_offers_out_of_stock_as_a_reason():
    """True, and the prompt still shows it, but no reason to buy: the grammar builds
    reasons from clauses alone, so it leaves that clause out."""
    sold_out = replace(ITEMS[1].product, quantity=0)
    request = replace(REQUEST, items=(ITEMS[0], replace(ITEMS[1], product=sold_out), ITEMS[2]))
    sheet = request.facts()
    stock = [f for f in sheet.products[1].facts if f.kind == "stock"]
    assert [(f.text, f.reason) for f in stock] == [("out of stock", False)]
    assert any(f.line().endswith(": out of stock") for f in sheet.products[1].facts)
    pattern = facts_grammar(request)["properties"]["reasons"]["prefixItems"][1]["properties"][
        "reason"
    ]["pattern"]
    assert "stock" not in pattern
    in_stock = facts_grammar(REQUEST)["properties"]["reasons"]["prefixItems"][1]["properties"]
    assert "[Ii]t is in stock" in in_stock["reason"]["pattern"]  # first letter either case


@pytest.mark.parametrize("seed", range(300))
def test_whatever_the_facts_grammar_admits_passes_the_check(seed):
    """A random demo-shop request (any shopper, any strategy) and a random answer the
    grammar admits: any lead, any one or two of each product's clauses, any intro."""
    rng = random.Random(seed)
    entry = rng.choice(CORPUS)
    request = request_of(entry, CATALOG)
    grammar = facts_grammar(request)
    answer = random_answer(rng, grammar, request.user_name)
    assert admitted_by(answer, grammar), answer
    result = check_answer(
        json.dumps(answer),
        request.items,
        VOCAB_DEMO,
        user_name=request.user_name,
        summary=request.summary,
        facts=request.facts(),
    )
    assert result.ok, (result.reasons, [p.span for p in result.problems], answer)


@pytest.mark.parametrize("seed", range(200))
def test_the_facts_grammar_refuses_a_word_put_into_a_clause(seed):
    """A clause with one word added, dropped or swapped for another fact's: the claim is no
    longer the fact's, so the grammar does not admit it."""
    rng = random.Random(seed)
    request = request_of(rng.choice(CORPUS), CATALOG)
    grammar = facts_grammar(request)
    i = rng.randrange(len(request.items))
    schema = grammar["properties"]["reasons"]["prefixItems"][i]["properties"]["reason"]
    own = [f.clause for f in request.facts().products[i].facts]
    words = rng.choice(own).split(" ")
    j = rng.randrange(len(words))
    kind = rng.choice(["add", "drop", "swap"])
    if kind == "add":
        words.insert(j, rng.choice(["not", "cheap", "best", "99", "$5.00", "never", "also"]))
    elif kind == "drop" and len(words) > 2:
        del words[j]
    else:
        words[j] = rng.choice(["bought", "returned", "hated", "12", "$1.00", "everyone"])
    changed = " ".join(words)
    if any(changed.lower() == t.lower() for t in own):
        pytest.skip("the change left another clause of the same product")
    assert not re.search(schema["pattern"], f"{changed}."), (kind, changed)


def admitted_by(answer: dict, grammar: dict) -> bool:
    """Valid under ``grammar`` (the schema itself is checked against the metaschema in
    ``test_the_facts_grammar_of_a_known_request``: doing it per case was 90% of the time)."""
    return jsonschema.Draft202012Validator(grammar).is_valid(answer)


@pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_compiles_the_facts_grammar():
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    for entry in CORPUS[::40]:
        gbnf = json_schema_to_gbnf(json.dumps(facts_grammar(request_of(entry, CATALOG))))
        assert "tuple-2-reason" in gbnf
        LlamaGrammar.from_string(gbnf, verbose=False)  # llama.cpp's own parser takes it
