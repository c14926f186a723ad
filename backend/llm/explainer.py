"""Explanations of a recommendation list, written from the evidence only.

``TemplateExplainer`` renders ``prompts/explanation.j2``: it is the offline answer and the
fallback whenever an LLM is not configured or fails. ``LLMExplainer`` asks the LLM for a
structured answer through ``CheckedWriter`` (``backend.llm.writer``: the evidence check and
one retry) and renders the checked answer through ``prompts/llm_explanation.j2``: raw model
text never reaches a shopper.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from backend.llm.answer_grammar import GrammarSetting
from backend.llm.check import CheckedAnswer, CheckResult, CheckVocabulary
from backend.llm.client import LLMClient, LLMError
from backend.llm.partial_json import finished_parts
from backend.llm.prompts import PromptError, PromptLibrary
from backend.llm.stats import ExplanationStats
from backend.llm.writer import (
    EXPLAIN_PROMPTS,
    CheckedWriter,
    ExplainedItem,
    ExplainOutcome,
    Explanation,
    ExplanationRequest,
    PromptTemplates,
    answer_max_tokens,
    item_contexts,
    log_failure,
)


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
            items=item_contexts(request.items),
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
        grammar: GrammarSetting = "auto",
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
            grammar=grammar,
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
            level = self.writer.grammar.level(1)  # no retry: the first answer's grammar
            schema = self.writer.schema(request, level)
            for delta in self.client.stream(messages, max_tokens=budget, schema=schema):
                chunks.append(delta)
                new = preview.feed(delta)
                if new:
                    yield ExplanationDelta(new)
        except LLMError as exc:
            log_failure("LLM explanation stream", exc)
            yield ExplanationFinal(self._fallback(request, exc.reason), verified=False)
            return
        result = self.writer.check("".join(chunks), request, limits, (system,), grammar=level)
        self.writer.grammar.record(level, result.ok)
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
