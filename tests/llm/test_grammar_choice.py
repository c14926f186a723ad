"""Which grammar each answer is asked under (``LLM_GRAMMAR``), and what that costs a model.

Known answers: the fixed settings; ``auto`` with a model whose own words always fail the check
(a small local model) moves its first answers to the ``facts`` grammar after ``WINDOW / 2``
failures, still asking in its own words every ``EXPLORE_EVERY``-th time; with a model whose
own words pass, it never leaves them. The fake model answers by the grammar it is sent, as a
grammar-constrained server would make a small model do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from backend.config import PROJECT_ROOT
from backend.llm.answer_grammar import GrammarChoice
from backend.llm.client import ChatMessage, CircuitStatus, Completion, ResponseSchema
from backend.llm.prompts import PromptLibrary
from backend.llm.writer import CheckedWriter
from tests.llm.fakes import GOOD_INTRO, REQUEST, answer, vocabulary

FACTS = REQUEST.facts()


class GrammarBoundModel:
    """Writes what the grammar it is sent allows: under ``facts`` a reason from each
    product's first fact, verbatim; under ``shape`` its own words, a price no fact gives
    unless ``own_words_pass``."""

    model = "grammar-bound"

    def __init__(self, *, own_words_pass: bool) -> None:
        self.own_words_pass = own_words_pass
        self.levels: list[str] = []

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_mode: bool = False,
        tool: object = None,
        schema: ResponseSchema | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        assert schema is not None and schema.grammar is not None
        reason = schema.grammar["properties"]["reasons"]["prefixItems"][0]["properties"]["reason"]
        if "pattern" in reason:
            self.levels.append("facts")
            text = json.dumps(
                {
                    "intro": "Hi Alice Lee!",
                    "reasons": [
                        {"product_id": p.ref, "reason": f"{p.facts[0].clause}."}
                        for p in FACTS.products
                    ],
                }
            )
        else:
            self.levels.append("shape")
            text = answer() if self.own_words_pass else answer({"P1": ("Only $5 today.", [])})
        return Completion(text=text, model=self.model, finish_reason="stop")

    def stream(self, messages, *, max_tokens=None, schema=None) -> Iterator[str]:  # type: ignore[no-untyped-def]
        raise AssertionError("not streamed here")

    def circuit(self) -> CircuitStatus:
        return CircuitStatus("closed", 0)


def writer(model: GrammarBoundModel, grammar: str = "auto") -> CheckedWriter:
    return CheckedWriter(
        client=model,  # type: ignore[arg-type]
        prompts=PromptLibrary(PROJECT_ROOT / "prompts"),
        vocabulary=vocabulary,
        grammar=grammar,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("setting", ["shape", "facts"])
def test_a_fixed_setting_asks_every_attempt_under_it(setting):
    choice = GrammarChoice(setting)  # type: ignore[arg-type]
    for _ in range(30):
        choice.record("shape", False)
    assert {choice.level(1), choice.level(2)} == {setting}


def test_auto_asks_in_the_models_words_then_retries_in_its_facts():
    choice = GrammarChoice("auto")
    assert (choice.level(1), choice.level(2)) == ("shape", "facts")


def test_a_model_whose_own_words_always_fail_is_asked_under_facts_at_once():
    model = GrammarBoundModel(own_words_pass=False)
    w = writer(model)
    outcomes = [w.write(REQUEST) for _ in range(30)]
    assert all(o.answer is not None for o in outcomes)  # every one ships, from its facts
    half = GrammarChoice.WINDOW // 2
    explore = GrammarChoice.EXPLORE_EVERY
    expected = [["shape", "facts"]] * half
    for n in range(half + 1, 31):
        expected.append(["shape", "facts"] if n % explore == 0 else ["facts"])
    assert [o.grammars for o in outcomes] == expected
    # 42 answers asked instead of 60: the small model's wasted first answers stop.
    assert len(model.levels) == sum(len(e) for e in expected) == 42
    by_grammar = w.stats.snapshot()["checks_by_grammar"]
    assert by_grammar == {
        "facts": {"passed": 30, "failed": 0},
        "shape": {"passed": 0, "failed": 12},
    }


def test_a_model_whose_own_words_pass_keeps_them():
    model = GrammarBoundModel(own_words_pass=True)
    w = writer(model)
    outcomes = [w.write(REQUEST) for _ in range(25)]
    assert [o.grammars for o in outcomes] == [["shape"]] * 25
    assert all(o.answer is not None and o.answer.intro == GOOD_INTRO for o in outcomes)


def test_own_words_that_pass_now_and_then_are_still_asked_first():
    """At or above the minimum pass rate the first answer stays in the model's words."""
    choice = GrammarChoice("auto")
    for i in range(GrammarChoice.WINDOW):
        choice.record("shape", i % 5 == 0)  # 20% pass
    assert [choice.level(1) for _ in range(12)] == ["shape"] * 12
    for _ in range(GrammarChoice.WINDOW):
        choice.record("shape", False)
    choice.record("facts", True)  # the facts grammar's passes do not count for own words
    assert "facts" in {choice.level(1) for _ in range(3)}
