"""The request an explanation is written for, and ``CheckedWriter``: the one loop of
LLM answer (JSON, citing numbered facts) → evidence check → one retry stating the failure.

Recommendation explanations (``explainer``) and chat replies both go through it; what to show
when no answer passes is their business.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import TypeAdapter

from backend.llm.answer_grammar import (
    REASON_WORDS,
    GrammarChoice,
    GrammarLevel,
    GrammarSetting,
    answer_schema_for,
)
from backend.llm.check import (
    NOT_JSON,
    CheckedAnswer,
    CheckLimits,
    CheckResult,
    CheckVocabulary,
    check_answer,
)
from backend.llm.client import ChatMessage, LLMCircuitOpen, LLMClient, LLMError, ResponseSchema
from backend.llm.facts import FactSheet, build_facts
from backend.llm.prompts import PromptError, PromptLibrary
from backend.llm.stats import ExplanationStats
from backend.recommender.evidence import Evidence
from backend.recommender.snapshot import ProductRecord
from backend.text import slug as slugify

log = logging.getLogger(__name__)


ExplanationSource = Literal["llm", "template"]


@dataclass(frozen=True, slots=True)
class ExplainedItem:
    product: ProductRecord
    evidence: Evidence


def item_contexts(items: Sequence[ExplainedItem]) -> list[dict[str, object]]:
    """The items as a template sees them: the product's fields and the evidence as JSON
    values (serialised in one call for all the items)."""
    evidence = _EVIDENCE_LIST.dump_python([item.evidence for item in items], mode="json")
    return [
        {**_product_context(item.product), "evidence": dumped}
        for item, dumped in zip(items, evidence, strict=True)
    ]


_EVIDENCE_LIST = TypeAdapter(list[Evidence])


@functools.lru_cache(maxsize=8192)
def _product_context(product: ProductRecord) -> dict[str, object]:
    """What a template is told of a product: the same for every list it is in, so computed
    once per product record (a third of an explanation's context, 10 items, was this).
    Callers copy it: a template never holds the shared dict."""
    return {
        "product_id": str(product.id),
        "name": product.name,
        "category": product.category,
        "category_slug": slugify(product.category),
        "price": f"{product.price:.2f}",
    }


@dataclass(frozen=True, slots=True)
class ExplanationRequest:
    user_name: str
    summary: str
    items: tuple[ExplainedItem, ...]
    user_id: uuid.UUID | None = None  # keys the explanation cache; None: not cached
    # More variables for the user prompt (the chat passes the shopper's request); never
    # evidence: the check reads only ``user_name``, ``summary`` and ``items``.
    prompt_extra: Mapping[str, object] = field(default_factory=dict)
    # When the shopper last touched each past product, to date the facts ("3 days ago").
    past_times: Mapping[uuid.UUID, datetime] = field(default_factory=dict)
    now: datetime | None = None

    def facts(self) -> FactSheet:
        """The numbered facts the prompt shows and the check holds the answer to."""
        return build_facts(
            self.items, summary=self.summary, past_times=self.past_times, now=self.now
        )


@dataclass(frozen=True, slots=True)
class Explanation:
    text: str
    source: ExplanationSource
    fallback_reason: str | None = None


def answer_max_tokens(item_count: int, words: int = REASON_WORDS, floor: int = 0) -> int:
    """A ``max_tokens`` the whole JSON answer fits in, with headroom: a real model must
    never be cut off mid-answer. About 60 tokens for the intro and the JSON frame; per
    reason ~1.5 tokens a word plus ~30 for its keys, ref and fact ids; then half again."""
    need = 60 + max(item_count, 1) * (words * 1.5 + 30)
    budget = int(need * 1.5 + 63) // 64 * 64
    return min(4096, max(floor, budget))


@dataclass(frozen=True, slots=True)
class PromptTemplates:
    """The prompts of one checked LLM answer: system, user, and the retry after a failed check."""

    system: str = "explain_system.j2"
    user: str = "explain_user.j2"
    retry: str = "explain_retry.j2"


EXPLAIN_PROMPTS = PromptTemplates()


def render_messages(
    prompts: PromptLibrary,
    request: ExplanationRequest,
    max_tokens: int,
    templates: PromptTemplates = EXPLAIN_PROMPTS,
) -> tuple[list[ChatMessage], CheckLimits, str]:
    """The system and user messages for ``request``, the check's limits, the system text.

    ``max_tokens`` is kept for callers; the word budget no longer shrinks with it, since
    the answer's token budget is sized to the answer (``answer_max_tokens``)."""
    words = REASON_WORDS
    sheet = request.facts()
    system = prompts.render(
        templates.system, max_words_per_reason=words, item_count=len(request.items)
    )
    user = prompts.render(
        templates.user,
        **request.prompt_extra,
        user_name=request.user_name,
        summary=request.summary,
        items=[
            {
                "ref": p.ref,
                "name": p.product.name,
                "category": p.product.category,
                "facts": [f.line() for f in p.facts],
            }
            for p in sheet.products
        ],
        request_facts=[f.line() for f in sheet.request],
    )
    # The check allows some slack over the word budget the prompt asks for.
    limits = CheckLimits(max_reason_words=words + 12)
    return [ChatMessage("system", system), ChatMessage("user", user)], limits, system


@dataclass
class ExplainOutcome:
    """An explanation plus what happened on the way (for previews and tests)."""

    explanation: Explanation
    checks: list[CheckResult] = field(default_factory=list)
    messages: list[ChatMessage] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    answer: CheckedAnswer | None = None  # set when an answer passed the evidence check
    fallback_reason: str | None = None  # set when none did
    max_tokens: list[int] = field(default_factory=list)  # the budget of each attempt
    facts: FactSheet | None = None
    grammars: list[GrammarLevel] = field(default_factory=list)  # each attempt's grammar
    tokens: int = 0  # completion tokens the server reported, over all attempts
    model_seconds: float = 0.0  # time spent waiting for the model's answers


class CheckedWriter:
    """LLM answer (JSON intro + a reason per item) → evidence check → one retry stating the
    failure. Returns the checked answer or why there is none; what to show instead is the
    caller's business (the explainer's template, the chat's template reply). Both the
    recommendation explanations and the chat replies go through this one loop."""

    def __init__(
        self,
        *,
        client: LLMClient,
        prompts: PromptLibrary,
        vocabulary: Callable[[], CheckVocabulary],
        stats: ExplanationStats | None = None,
        max_tokens: int = 150,
        templates: PromptTemplates = EXPLAIN_PROMPTS,
        grammar: GrammarSetting = "auto",
    ) -> None:
        self.client = client
        self.grammar = GrammarChoice(grammar)
        self.prompts = prompts
        self.vocabulary = vocabulary
        self.stats = stats or ExplanationStats()
        self.max_tokens = max_tokens
        self.templates = templates
        self._facts: tuple[ExplanationRequest, FactSheet] | None = None

    def facts(self, request: ExplanationRequest) -> FactSheet:
        """The request's facts, built once per request (a stream checks many times)."""
        cached = self._facts
        if cached is not None and cached[0] is request:
            return cached[1]
        sheet = request.facts()
        self._facts = (request, sheet)
        return sheet

    def schema(self, request: ExplanationRequest, level: GrammarLevel = "shape") -> ResponseSchema:
        """The answer's schema, with this request's grammar at ``level``."""
        return answer_schema_for(self.facts(request), level=level, shopper=request.user_name)

    def write(self, request: ExplanationRequest, *, echo: tuple[str, ...] = ()) -> ExplainOutcome:
        """``echo``: texts the answer may not repeat (besides the system prompt), e.g. the
        shopper's own message, so a model obeying an injected order is caught."""
        outcome = ExplainOutcome(explanation=Explanation(text="", source="template"))
        if not request.items:
            outcome.fallback_reason = "no_items"
            return outcome
        try:
            messages, limits, system = self.messages(request)
        except PromptError:
            log.exception("LLM prompt templates failed to render")
            outcome.fallback_reason = "prompt_error"
            return outcome
        outcome.messages = messages
        outcome.facts = self.facts(request)
        truncated = False
        budget = answer_max_tokens(len(request.items), floor=self.max_tokens)
        for attempt in (1, 2):
            try:
                if attempt == 2:
                    retry = self._retry_prompt(outcome.checks[-1], truncated)
                    messages.append(ChatMessage("assistant", outcome.answers[-1]))
                    messages.append(ChatMessage("user", retry))
                    if truncated:  # cut off: the retry gets room for the whole answer
                        budget = min(4096, budget * 2)
                outcome.max_tokens.append(budget)
                level = self.grammar.level(attempt)
                schema = self.schema(request, level)
                started = time.perf_counter()  # the model's time only, not the schema's
                completion = self.client.complete(
                    messages, json_mode=True, schema=schema, max_tokens=budget
                )
                outcome.model_seconds += time.perf_counter() - started
                outcome.tokens += completion.tokens or 0
            except LLMError as exc:
                log_failure("LLM answer", exc)
                outcome.fallback_reason = exc.reason
                return outcome
            except PromptError:
                log.exception("the LLM retry template failed to render")
                outcome.fallback_reason = "prompt_error"
                return outcome
            truncated = completion.finish_reason == "length"
            outcome.answers.append(completion.text)
            result = self.check(completion.text, request, limits, (system, *echo), grammar=level)
            self.grammar.record(level, result.ok)
            outcome.checks.append(result)
            outcome.grammars.append(level)
            if result.ok and result.answer is not None:
                outcome.answer = result.answer
                return outcome
            log.info("LLM answer failed the evidence check: %s", ", ".join(result.reasons))
        outcome.fallback_reason = self.failure_reason(outcome.checks[-1])
        return outcome

    def messages(self, request: ExplanationRequest) -> tuple[list[ChatMessage], CheckLimits, str]:
        return render_messages(self.prompts, request, self.max_tokens, self.templates)

    def check(
        self,
        text: str,
        request: ExplanationRequest,
        limits: CheckLimits,
        echo: tuple[str, ...],
        *,
        partial: bool = False,
        record: bool = True,
        grammar: GrammarLevel | None = None,
    ) -> CheckResult:
        """``partial``/``record=False``: a streaming preview's check, not counted."""
        result = check_answer(
            text,
            request.items,
            self.vocabulary(),
            user_name=request.user_name,
            summary=request.summary,
            system_prompts=echo,
            limits=limits,
            partial=partial,
            facts=self.facts(request),
        )
        if record:
            self.stats.record_check(result, grammar)
        return result

    def _retry_prompt(self, result: CheckResult, truncated: bool) -> str:
        problems = result.describe()
        if truncated and NOT_JSON in result.reasons:
            problems.append("the answer was cut off at the length limit: keep each reason short")
        return self.prompts.render(self.templates.retry, problems=problems)

    @staticmethod
    def failure_reason(result: CheckResult) -> str:
        first = result.reasons[0] if result.reasons else "unknown"
        return "bad_json" if first == NOT_JSON else f"check_failed:{first}"


def log_failure(what: str, exc: LLMError) -> None:
    """While the circuit is open every request would say the same: the breaker logged the
    opening once, and the llm_calls metric counts each refusal."""
    level = logging.DEBUG if isinstance(exc, LLMCircuitOpen) else logging.WARNING
    log.log(level, "%s failed (%s): %s", what, exc.reason, exc)
