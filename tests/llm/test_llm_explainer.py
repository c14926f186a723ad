"""The LLM explainer over a fake LLM: checked answers ship, everything else is the template."""

from __future__ import annotations

import json
import re

import pytest

from backend.config import PROJECT_ROOT
from backend.infra.cache import MemoryCache, explanations_key
from backend.llm.check import check_answer
from backend.llm.client import (
    LLMBadResponse,
    LLMCircuitOpen,
    LLMError,
    LLMRateLimited,
    LLMRejected,
    LLMTimeout,
    LLMUnavailable,
)
from backend.llm.explainer import (
    ExplanationDelta,
    ExplanationFinal,
    LLMExplainer,
    TemplateExplainer,
    stream_explanation,
)
from backend.llm.explanation_cache import CachedExplainer
from backend.llm.prompts import PromptLibrary
from backend.llm.stats import ExplanationStats
from backend.llm.writer import Explanation, ExplanationRequest, answer_max_tokens
from tests.llm.fakes import (
    EARBUDS,
    GOOD_REASONS,
    ITEMS,
    REQUEST,
    FakeLLM,
    answer,
    good_answer,
    vocabulary,
)
from tests.llm.test_check import PLANTED

ADVERSARIAL = [(label, text, code) for label, text, code, _ in PLANTED]

PROMPTS = PromptLibrary(PROJECT_ROOT / "prompts")
TEMPLATE_TEXT = TemplateExplainer(PROMPTS).explain(REQUEST).text


def make(fake: FakeLLM, prompts: PromptLibrary = PROMPTS) -> LLMExplainer:
    return LLMExplainer(
        client=fake, prompts=prompts, vocabulary=vocabulary, stats=ExplanationStats()
    )


def assert_shipped_safely(explanation: Explanation, fake: FakeLLM, request: ExplanationRequest):
    """Nothing unchecked ships: the template, or the rendering of an answer that passed."""
    if explanation.source == "template":
        assert explanation.text == TemplateExplainer(PROMPTS).explain(request).text
        assert explanation.fallback_reason
        return
    assert explanation.fallback_reason is None
    last = fake.answers[-1]
    result = check_answer(last, request.items, vocabulary(), user_name=request.user_name,
                          summary=request.summary)  # fmt: skip
    assert result.ok and result.answer is not None
    lines = explanation.text.splitlines()
    assert lines[0] == (result.answer.intro or f"Hi {request.user_name}!")
    assert lines[1:] == [
        f"- {r.item.product.name} (${r.item.product.price:.2f}): {r.reason}"
        for r in result.answer.reasons
    ]


def test_a_checked_answer_is_rendered_through_the_template():
    fake = FakeLLM([good_answer()])
    explainer = make(fake)
    explanation = explainer.explain(REQUEST)
    assert explanation.source == "llm" and explanation.fallback_reason is None
    assert explanation.text.splitlines() == [
        "Hi Alice, here are three picks for you.",
        f"- Wireless Earbuds ($59.99): {GOOD_REASONS['P1'][0]}",
        f"- Desk Lamp ($34.00): {GOOD_REASONS['P2'][0]}",
        f"- Trailhead Dome Tent ($129.00): {GOOD_REASONS['P3'][0]}",
    ]
    assert_shipped_safely(explanation, fake, REQUEST)
    assert explainer.stats.snapshot()["checks_passed"] == 1


def test_the_prompt_holds_the_evidence_but_no_ids_or_scores():
    fake = FakeLLM([good_answer()])
    make(fake).explain(REQUEST)
    (system, user), *_ = [fake.history[0]]
    assert system.role == "system" and user.role == "user"
    assert "under 30 words" in system.content  # the budget no longer shrinks with max_tokens
    assert "[P1] Wireless Earbuds | category: Electronics" in user.content
    assert "F1: you bought the Studio Headphones" in user.content  # facts, numbered
    assert "F5: price $59.99" in user.content
    assert "Alice Lee" in user.content and "U1: Recently purchased" in user.content
    assert str(EARBUDS.id) not in user.content
    assert "0.92" not in user.content  # scores would invite invented numbers


def test_a_failed_check_is_retried_once_with_the_failure_stated():
    bad = answer(P1="Yours at $49.99 for wireless audio.")
    fake = FakeLLM([bad, good_answer()])
    explainer = make(fake)
    explanation = explainer.explain(REQUEST)
    assert explanation.source == "llm"
    retry = fake.history[1]
    assert [m.role for m in retry] == ["system", "user", "assistant", "user"]
    assert retry[2].content == bad
    assert "rejected" in retry[3].content and "$49.99" in retry[3].content
    assert "Wireless Earbuds" in retry[3].content
    stats = explainer.stats.snapshot()
    assert stats["checks_failed"] == 1 and stats["checks_passed"] == 1
    assert stats["check_failures_by_reason"] == {"unsupported_price": 1}
    assert_shipped_safely(explanation, fake, REQUEST)


def test_two_failed_checks_fall_back_to_the_template_with_the_reason():
    fake = FakeLLM([answer(P2="Now 20% off."), answer(P2="Now 20% off!")])
    explainer = make(fake)
    explanation = explainer.explain(REQUEST)
    assert explanation == Explanation(TEMPLATE_TEXT, "template", "check_failed:unsupported_number")
    assert len(fake.history) == 2
    stats = explainer.stats.snapshot()
    assert stats["fallbacks_by_reason"] == {"check_failed:unsupported_number": 1}
    assert stats["explanations_by_source"] == {"template": 1}


def test_not_json_twice_is_bad_json():
    fake = FakeLLM(["Sure! Here you go.", "Hi Alice, you will love these."])
    explanation = make(fake).explain(REQUEST)
    assert (explanation.source, explanation.fallback_reason) == ("template", "bad_json")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (LLMUnavailable("down"), "llm_unavailable"),
        (LLMTimeout("slow"), "llm_timeout"),
        (LLMRateLimited("busy", 3.0), "llm_rate_limited"),
        (LLMCircuitOpen("open"), "circuit_open"),
        (LLMBadResponse("garbage"), "llm_bad_response"),
        (LLMRejected("401"), "llm_rejected"),
    ],
)
def test_llm_errors_fall_back_with_their_reason(error: LLMError, reason: str):
    for responses in ([error], [answer(P1="$1"), error]):  # on the first call or the retry
        fake = FakeLLM(responses)
        explanation = make(fake).explain(REQUEST)
        assert explanation == Explanation(TEMPLATE_TEXT, "template", reason)


def test_nothing_to_explain_needs_no_llm():
    fake = FakeLLM()
    request = ExplanationRequest(user_name="Bo", summary="", items=())
    explanation = make(fake).explain(request)
    assert explanation.source == "template" and explanation.fallback_reason == "no_items"
    assert "nothing new" in explanation.text and fake.history == []


@pytest.mark.parametrize("template", ["explain_user.j2", "explain_retry.j2", "llm_explanation.j2"])
def test_a_broken_prompt_template_falls_back_instead_of_failing(template):
    broken = PROMPTS.with_draft(template, "{{ no_such_variable }}")
    fake = FakeLLM(
        [answer(P1="$1"), good_answer()] if template.endswith("retry.j2") else [good_answer()]
    )
    explanation = make(fake, broken).explain(REQUEST)
    assert explanation == Explanation(TEMPLATE_TEXT, "template", "prompt_error")
    final = list(make(FakeLLM([good_answer()]), broken).stream(REQUEST))[-1]
    if template != "explain_retry.j2":  # streaming never retries
        assert isinstance(final, ExplanationFinal)
        assert final.explanation.fallback_reason == "prompt_error"


@pytest.mark.parametrize(("label", "bad", "code"), ADVERSARIAL, ids=[a[0] for a in ADVERSARIAL])
def test_no_planted_bad_answer_is_ever_shipped(label, bad, code):
    fake = FakeLLM([bad, bad])
    explanation = make(fake).explain(REQUEST)
    assert explanation.source == "template"
    assert explanation.fallback_reason in {"bad_json", *(f"check_failed:{c}" for c in _codes())}
    assert_shipped_safely(explanation, fake, REQUEST)


@pytest.mark.parametrize(("label", "bad", "code"), ADVERSARIAL, ids=[a[0] for a in ADVERSARIAL])
def test_a_bad_first_answer_with_a_good_retry_ships_only_the_checked_one(label, bad, code):
    fake = FakeLLM([bad, good_answer()])
    explanation = make(fake).explain(REQUEST)
    assert explanation.source == "llm"
    assert_shipped_safely(explanation, fake, REQUEST)
    for fragment in ("$49.99", "Yoga Mat", "Zentrix", "evidence:", "20%"):
        if fragment in bad:
            assert fragment not in explanation.text


def _codes() -> set[str]:
    from backend.llm import check

    return {v for k, v in vars(check).items() if k.isupper() and isinstance(v, str)}


def test_the_token_budget_is_sized_to_the_answer_not_fixed():
    five, ten = answer_max_tokens(5), answer_max_tokens(10)
    assert five > 150 and ten > five  # the old fixed cap could not hold 5 reasons
    assert answer_max_tokens(5, floor=2000) == 2000  # never below the configured value
    assert answer_max_tokens(500) == 4096


def test_the_llm_is_asked_for_the_answer_schema_with_a_sized_budget():
    fake = FakeLLM([good_answer()])
    make(fake).explain(REQUEST)
    (call,) = fake.calls
    assert call["schema"] is not None and call["schema"].name == "grounded_answer"
    assert call["max_tokens"] == answer_max_tokens(len(REQUEST.items), floor=150)


# --- streaming ------------------------------------------------------------------------


def test_stream_sends_checked_pieces_that_add_up_to_the_verified_text():
    fake = FakeLLM([good_answer()])
    explainer = make(fake)
    events = list(explainer.stream(REQUEST))
    deltas = [e.text for e in events if isinstance(e, ExplanationDelta)]
    final = events[-1]
    assert isinstance(final, ExplanationFinal) and final.verified
    assert len(deltas) == 4  # the intro, then each reason once it has passed the check
    assert deltas[0].startswith("Hi Alice, here are three picks")
    assert GOOD_REASONS["P3"][0] in deltas[3]
    assert final.explanation.source == "llm"
    assert "".join(deltas) == final.explanation.text  # the same rendering, piece by piece
    assert final.explanation.text == make(FakeLLM([good_answer()])).explain(REQUEST).text
    assert explainer.stats.snapshot()["checks_passed"] == 1  # previews are not counted


def test_a_reason_that_fails_the_check_is_never_streamed():
    lie = "Pairs with the Yoga Mat."  # the second of three reasons: unsupported
    fake = FakeLLM([answer(P2=lie)])
    events = list(make(fake).stream(REQUEST))
    shown = "".join(e.text for e in events if isinstance(e, ExplanationDelta))
    assert shown.startswith("Hi Alice") and GOOD_REASONS["P1"][0] in shown  # checked, shown
    assert lie not in shown and GOOD_REASONS["P3"][0] not in shown  # the preview stopped there
    final = events[-1]
    assert isinstance(final, ExplanationFinal) and not final.verified
    assert final.explanation == Explanation(
        TEMPLATE_TEXT, "template", "check_failed:unsupported_product"
    )
    assert len(fake.history) == 1  # no retry once text went out


def test_reasons_out_of_order_are_held_back_until_the_final_text():
    data = json.loads(good_answer())
    data["reasons"].reverse()
    fake = FakeLLM([json.dumps(data)])
    events = list(make(fake).stream(REQUEST))
    deltas = [e.text for e in events if isinstance(e, ExplanationDelta)]
    final = events[-1]
    assert isinstance(final, ExplanationFinal) and final.verified
    # The intro at once; the reasons only when the first item's arrives (last here), in order.
    assert len(deltas) == 2 and deltas[0] == final.explanation.text.split("\n")[0]
    assert "".join(deltas) == final.explanation.text


def test_a_stream_error_ends_with_the_template():
    fake = FakeLLM([LLMUnavailable("gone")])
    (final,) = list(make(fake).stream(REQUEST))
    assert isinstance(final, ExplanationFinal)
    assert final.explanation.fallback_reason == "llm_unavailable"


def test_a_non_streaming_explainer_streams_its_whole_text():
    events = list(
        stream_explanation(TemplateExplainer(PROMPTS, fallback_reason="no_api_key"), REQUEST)
    )
    assert "".join(e.text for e in events if isinstance(e, ExplanationDelta)) == TEMPLATE_TEXT
    final = events[-1]
    assert isinstance(final, ExplanationFinal) and not final.verified
    assert final.explanation.fallback_reason == "no_api_key"


# --- the explanation cache --------------------------------------------------------------


def cached(fake: FakeLLM, prompts: PromptLibrary = PROMPTS) -> tuple[CachedExplainer, MemoryCache]:
    cache = MemoryCache()
    return CachedExplainer(make(fake, prompts), cache, ttl_seconds=60), cache


def test_the_same_list_for_the_same_user_is_explained_once():
    fake = FakeLLM([good_answer()])
    explainer, cache = cached(fake)
    first = explainer.explain(REQUEST)
    second = explainer.explain(REQUEST)
    assert first == second and len(fake.history) == 1
    assert explainer.inner.stats.snapshot()["cache_hits"] == 1
    cache.delete(explanations_key(REQUEST.user_id))  # invalidating the user drops it
    fake.add(good_answer())
    explainer.explain(REQUEST)
    assert len(fake.history) == 2


def fitting(messages) -> str:
    """A good answer for exactly the refs the prompt asks about."""
    refs = re.search(r"each of: (.*)\.", messages[1].content).group(1).split(", ")
    return answer({ref: GOOD_REASONS[ref] for ref in refs}, intro="Hi Alice, some picks for you.")


def test_the_key_covers_user_ids_prompt_version_and_model():
    fake = FakeLLM([fitting] * 5)
    explainer, cache = cached(fake)
    explainer.explain(REQUEST)
    other_user = ExplanationRequest(REQUEST.user_name, REQUEST.summary, ITEMS, user_id=EARBUDS.id)
    explainer.explain(other_user)
    fewer = ExplanationRequest(REQUEST.user_name, REQUEST.summary, ITEMS[:2], REQUEST.user_id)
    assert explainer.explain(fewer).source == "llm"
    assert explainer.explain(REQUEST).source == "llm"  # still cached next to the shorter list
    assert len(fake.history) == 3
    edited = CachedExplainer(
        make(
            fake,
            PROMPTS.with_draft(
                "explain_system.j2", PROMPTS.file_source("explain_system.j2") + "\nBe cheerful."
            ),
        ),
        cache,
        60,
    )
    edited.explain(REQUEST)
    assert len(fake.history) == 4  # a new prompt version is a new key
    fake.model = "another-model"
    explainer.explain(REQUEST)
    assert len(fake.history) == 5


def test_template_fallbacks_and_anonymous_requests_are_not_cached():
    fake = FakeLLM([LLMUnavailable("down"), good_answer(), good_answer()])
    explainer, _ = cached(fake)
    assert explainer.explain(REQUEST).source == "template"
    assert explainer.explain(REQUEST).source == "llm"  # the outage did not stick
    anonymous = ExplanationRequest(REQUEST.user_name, REQUEST.summary, ITEMS)
    explainer.explain(anonymous)
    assert len(fake.history) == 3


def test_a_cached_explanation_streams_at_once_and_says_so():
    fake = FakeLLM([good_answer()])
    explainer, _ = cached(fake)
    list(explainer.stream(REQUEST))  # verified: stored
    events = list(explainer.stream(REQUEST))
    assert len(fake.history) == 1
    final = events[-1]
    assert isinstance(final, ExplanationFinal) and final.cached and final.verified


def test_an_unreadable_cache_entry_is_ignored():
    fake = FakeLLM([good_answer()])
    explainer, cache = cached(fake)
    cache.set(explanations_key(REQUEST.user_id), explainer.field(REQUEST), "{not json", 60)
    assert explainer.explain(REQUEST).source == "llm"
    assert json.loads(cache.get(explanations_key(REQUEST.user_id), explainer.field(REQUEST)) or "")


def test_text_written_while_an_event_invalidated_the_user_is_not_stored():
    cache_box = {}

    def answer_while_the_shopper_acts(messages) -> str:
        cache_box["cache"].delete(explanations_key(REQUEST.user_id))  # an event arrives
        return good_answer()

    fake = FakeLLM([answer_while_the_shopper_acts, good_answer()])
    explainer, cache = cached(fake)
    cache_box["cache"] = cache
    assert explainer.explain(REQUEST).source == "llm"  # served, but from older evidence
    assert cache.get(explanations_key(REQUEST.user_id), explainer.field(REQUEST)) is None
    explainer.explain(REQUEST)
    assert len(fake.history) == 2  # written afresh; this one is stored
    assert cache.get(explanations_key(REQUEST.user_id), explainer.field(REQUEST)) is not None
