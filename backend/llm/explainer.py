"""Explanations of a recommendation list, written from the evidence only.

``TemplateExplainer`` renders ``prompts/explanation.j2``: it is the offline answer and the
fallback whenever an LLM is not configured or fails. ``LLMExplainer`` asks the LLM for a
structured answer, runs the evidence check on it (``backend.llm.check``) and renders the
checked answer through ``prompts/llm_explanation.j2``: raw model text never reaches a shopper.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from backend.llm.check import (
    ANSWER_SCHEMA_NAME,
    NOT_JSON,
    CheckedAnswer,
    CheckLimits,
    CheckResult,
    CheckVocabulary,
    answer_schema,
    check_answer,
)
from backend.llm.client import ChatMessage, LLMCircuitOpen, LLMClient, LLMError, ResponseSchema
from backend.llm.facts import FactSheet, build_facts
from backend.llm.partial_json import finished_parts
from backend.llm.prompts import PromptError, PromptLibrary
from backend.llm.stats import ExplanationStats
from backend.recommender.evidence import Evidence
from backend.recommender.snapshot import ProductRecord
from backend.text import slug as slugify

ExplanationSource = Literal["llm", "template"]
ANSWER_SCHEMA = ResponseSchema(ANSWER_SCHEMA_NAME, answer_schema())
REASON_WORDS = 30  # the word budget per reason the prompt asks for


@dataclass(frozen=True, slots=True)
class ExplainedItem:
    product: ProductRecord
    evidence: Evidence

    def as_context(self) -> dict[str, object]:
        return {
            "product_id": str(self.product.id),
            "name": self.product.name,
            "category": self.product.category,
            "category_slug": slugify(self.product.category),
            "price": f"{self.product.price:.2f}",
            "evidence": self.evidence.model_dump(mode="json"),
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


class Explainer(Protocol):
    def explain(self, request: ExplanationRequest) -> Explanation: ...


class TemplateExplainer:
    template = "explanation.j2"

    def __init__(self, prompts: PromptLibrary, *, fallback_reason: str | None = None) -> None:
        self.prompts = prompts
        self.fallback_reason = fallback_reason

    def explain(self, request: ExplanationRequest) -> Explanation:
        text = self.prompts.render(
            self.template,
            user_name=request.user_name,
            summary=request.summary,
            items=[item.as_context() for item in request.items],
        )
        return Explanation(text=text, source="template", fallback_reason=self.fallback_reason)


# --- the LLM explainer ------------------------------------------------------------------

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExplanationDelta:
    """Checked text while the LLM writes; the final event's text replaces it (the checked
    answer, which the deltas begin, or the template when the whole answer fails)."""

    text: str


class CheckedPreview:
    """What may be shown of an answer still arriving: its intro and each finished reason,
    once they pass the evidence check as a partial answer, rendered like the final text.

    A piece that fails stops the preview (the final check decides what is shown); a reason
    is shown once the reasons of the items before it are, so the deltas always begin the
    final text."""

    def __init__(
        self,
        items: Sequence[ExplainedItem],
        check: Callable[[str], CheckResult],
        render: Callable[[CheckedAnswer], str],
    ) -> None:
        self._items = items
        self._check = check
        self._render = render
        self._buffer = ""
        self._pieces = 0
        self._shown = ""
        self._stopped = False

    def feed(self, delta: str) -> str:
        """Add a raw delta; return newly checked text to show ('' if none)."""
        self._buffer += delta
        if self._stopped:
            return ""
        parts = finished_parts(self._buffer)
        pieces = len(parts.reasons) + (parts.intro is not None)
        if parts.intro is None or pieces == self._pieces:
            return ""
        self._pieces = pieces
        result = self._check(parts.as_json())
        if not result.ok or result.answer is None:
            self._stopped = True
            return ""
        reasons = result.answer.reasons  # in the items' order, with gaps
        ready = 0
        while ready < len(reasons) and reasons[ready].item is self._items[ready]:
            ready += 1
        try:
            text = self._render(CheckedAnswer(result.answer.intro, reasons[:ready]))
        except PromptError:
            self._stopped = True
            return ""
        if not text.startswith(self._shown) or text == self._shown:
            return ""
        new, self._shown = text[len(self._shown) :], text
        return new


@dataclass(frozen=True, slots=True)
class ExplanationFinal:
    explanation: Explanation
    verified: bool  # the LLM's text passed the evidence check
    cached: bool = False


ExplanationEvent = ExplanationDelta | ExplanationFinal


def stream_explanation(
    explainer: Explainer, request: ExplanationRequest
) -> Iterator[ExplanationEvent]:
    """Events for any explainer: a streaming one streams, any other sends its text at once."""
    stream = getattr(explainer, "stream", None)
    if callable(stream):
        yield from stream(request)
        return
    yield from _whole(explainer.explain(request))


def _whole(explanation: Explanation) -> Iterator[ExplanationEvent]:
    for line in explanation.text.splitlines(keepends=True):
        yield ExplanationDelta(line)
    yield ExplanationFinal(explanation, verified=False)


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
    ) -> None:
        self.client = client
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
                completion = self.client.complete(
                    messages, json_mode=True, schema=ANSWER_SCHEMA, max_tokens=budget
                )
            except LLMError as exc:
                _log_failure("LLM answer", exc)
                outcome.fallback_reason = exc.reason
                return outcome
            except PromptError:
                log.exception("the LLM retry template failed to render")
                outcome.fallback_reason = "prompt_error"
                return outcome
            truncated = completion.finish_reason == "length"
            outcome.answers.append(completion.text)
            result = self.check(completion.text, request, limits, (system, *echo))
            outcome.checks.append(result)
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
            self.stats.record_check(result)
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


class LLMExplainer:
    """LLM answer → evidence check → (one retry stating the failure) → render, else template."""

    system_template = EXPLAIN_PROMPTS.system
    user_template = EXPLAIN_PROMPTS.user
    retry_template = EXPLAIN_PROMPTS.retry
    render_template = "llm_explanation.j2"

    def __init__(
        self,
        *,
        client: LLMClient,
        prompts: PromptLibrary,
        vocabulary: Callable[[], CheckVocabulary],
        stats: ExplanationStats | None = None,
        max_tokens: int = 150,
        fallback: Explainer | None = None,
    ) -> None:
        self.client = client
        self.prompts = prompts
        self.stats = stats or ExplanationStats()
        self.fallback = fallback or TemplateExplainer(prompts)
        self.writer = CheckedWriter(
            client=client,
            prompts=prompts,
            vocabulary=vocabulary,
            stats=self.stats,
            max_tokens=max_tokens,
            templates=PromptTemplates(
                self.system_template, self.user_template, self.retry_template
            ),
        )

    @property
    def templates(self) -> tuple[str, ...]:
        return (self.system_template, self.user_template, self.retry_template, self.render_template)

    def cache_version(self) -> str:
        """Changes whenever a prompt in effect or the model changes (part of the cache key)."""
        return "|".join([*(self.prompts.version(t) for t in self.templates), self.client.model])

    def explain(self, request: ExplanationRequest) -> Explanation:
        return self.explain_detailed(request).explanation

    def explain_detailed(self, request: ExplanationRequest) -> ExplainOutcome:
        outcome = self.writer.write(request)
        if outcome.answer is None:
            return self._fallen_back(outcome, request, outcome.fallback_reason or "unknown")
        try:
            outcome.explanation = self._render(request, outcome.answer)
        except PromptError:
            log.exception("an LLM explanation template failed to render")
            return self._fallen_back(outcome, request, "prompt_error")
        self.stats.record_outcome("llm", None)
        return outcome

    def stream(self, request: ExplanationRequest) -> Iterator[ExplanationEvent]:
        """Checked deltas while the LLM writes, then the checked text or the template as the
        final event.

        Nothing unchecked is streamed: the intro and each finished reason are checked as a
        partial answer first, and shown rendered like the final text (``CheckedPreview``).
        No retry here: the shopper may have seen part of the answer, so a failed final check
        ends the stream with the template text instead.
        """
        if not request.items:
            yield from _whole(self._fallback(request, "no_items"))
            return
        try:
            messages, limits, system = self.writer.messages(request)
        except PromptError:
            log.exception("LLM prompt templates failed to render")
            yield from _whole(self._fallback(request, "prompt_error"))
            return
        preview = CheckedPreview(
            request.items,
            check=lambda text: self.writer.check(
                text, request, limits, (system,), partial=True, record=False
            ),
            render=lambda answer: self._render(request, answer).text,
        )
        chunks: list[str] = []
        try:
            budget = answer_max_tokens(len(request.items), floor=self.writer.max_tokens)
            for delta in self.client.stream(messages, max_tokens=budget):
                chunks.append(delta)
                new = preview.feed(delta)
                if new:
                    yield ExplanationDelta(new)
        except LLMError as exc:
            _log_failure("LLM explanation stream", exc)
            yield ExplanationFinal(self._fallback(request, exc.reason), verified=False)
            return
        result = self.writer.check("".join(chunks), request, limits, (system,))
        if not result.ok or result.answer is None:
            reason = self.writer.failure_reason(result)
            yield ExplanationFinal(self._fallback(request, reason), verified=False)
            return
        try:
            explanation = self._render(request, result.answer)
        except PromptError:
            log.exception("the LLM explanation template failed to render")
            yield ExplanationFinal(self._fallback(request, "prompt_error"), verified=False)
            return
        self.stats.record_outcome("llm", None)
        yield ExplanationFinal(explanation, verified=True)

    # -- steps --

    def _render(self, request: ExplanationRequest, answer: CheckedAnswer) -> Explanation:
        text = self.prompts.render(
            self.render_template,
            user_name=request.user_name,
            intro=answer.intro,
            reasons=[
                {
                    "product_id": str(r.item.product.id),
                    "name": r.item.product.name,
                    "category": r.item.product.category,
                    "price": f"{r.item.product.price:.2f}",
                    "reason": r.reason,
                }
                for r in answer.reasons
            ],
        )
        return Explanation(text=text, source="llm")

    def _fallback(self, request: ExplanationRequest, reason: str) -> Explanation:
        template = self.fallback.explain(request)
        self.stats.record_outcome("template", reason)
        return Explanation(text=template.text, source="template", fallback_reason=reason)

    def _fallen_back(
        self, outcome: ExplainOutcome, request: ExplanationRequest, reason: str
    ) -> ExplainOutcome:
        outcome.explanation = self._fallback(request, reason)
        return outcome


def _log_failure(what: str, exc: LLMError) -> None:
    """While the circuit is open every request would say the same: the breaker logged the
    opening once, and the llm_calls metric counts each refusal."""
    level = logging.DEBUG if isinstance(exc, LLMCircuitOpen) else logging.WARNING
    log.log(level, "%s failed (%s): %s", what, exc.reason, exc)
