"""Prompt management for the product team: list, read, update, roll back, preview.

The files in ``prompts/`` are the source of truth in git; an update stores a new version in
the database (``PromptStore``), which the ``PromptLibrary`` serves from then on, no restart.
A new version must parse, read only variables the code passes and keep the required ones, and
it must render for a sample request before it is stored. A preview renders a draft for real
users and, with an LLM configured, generates and checks explanations to report the pass rate.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.db import crud
from backend.errors import InvalidInputError, NotFoundError
from backend.llm.answer_grammar import GrammarSetting
from backend.llm.check import CheckVocabulary
from backend.llm.client import LLMClient
from backend.llm.explainer import LLMExplainer, TemplateExplainer
from backend.llm.prompt_store import PromptStore, StoredPrompt
from backend.llm.prompts import PromptError, PromptLibrary
from backend.llm.stats import ExplanationStats
from backend.llm.writer import render_messages
from backend.services.prompt_checks import PromptProblem, locate_problems, trial_render
from backend.services.recommend import RecommendationService

MAX_PREVIEW_USERS = 10
MAX_SHOPPERS = 200


class PromptSummary(BaseModel):
    name: str
    origin: Literal["file", "db"]
    version: int  # 0: the file
    author: str | None = None
    updated_at: datetime | None = None


class PromptDetail(PromptSummary):
    source: str
    file_source: str
    variables_used: list[str]
    variables_allowed: list[str]
    variables_required: list[str]


class PromptVersionOut(BaseModel):
    version: int
    author: str
    created_at: datetime
    note: str | None
    source: str | None  # None: a reset to the file
    in_effect: bool


class FailedClaim(BaseModel):
    """One claim of an LLM answer that failed the check, and why."""

    attempt: int  # 1: the first answer, 2: the retry
    code: str  # e.g. unsupported_claim, unsupported_price, wrong_action
    reason: str  # the sentence the retry prompt was given
    span: str | None = None  # the words that failed, as the LLM wrote them
    product_id: str | None = None  # None: the intro or the whole answer
    product_name: str | None = None


class PreviewSample(BaseModel):
    user_id: uuid.UUID
    user_name: str
    rendered: dict[str, str]
    error: str | None = None
    explanation: str | None = None
    explanation_source: str | None = None
    fallback_reason: str | None = None
    first_check_passed: bool | None = None
    check_reasons: list[str] = []
    # The model's own text of each attempt: with a fallback, ``explanation`` is the template's,
    # and this is the only place the answer that was refused can be read.
    llm_answers: list[str] = []
    failed_claims: list[FailedClaim] = []  # every failed claim of every attempt
    facts: list[str] = []  # the numbered facts the prompt gave ("F3: ...")


class PreviewResult(BaseModel):
    name: str
    draft: bool
    llm: bool
    samples: list[PreviewSample]
    render_errors: int
    # With an LLM: share of samples whose first answer passed the check, and whose final
    # explanation is the LLM's (after at most one retry).
    first_attempt_pass_rate: float | None = None
    pass_rate: float | None = None


class PromptCheck(BaseModel):
    name: str
    ok: bool
    problems: list[PromptProblem]
    variables_used: list[str]
    variables_allowed: list[str]
    variables_required: list[str]


class ShopperRef(BaseModel):
    id: uuid.UUID
    name: str


class PromptInvalid(InvalidInputError):
    """A version the validator refuses; ``problems`` say where (the message stays one line)."""

    def __init__(self, message: str, problems: list[PromptProblem]) -> None:
        super().__init__(message)
        self.problems = problems


class PromptAdmin:
    def __init__(
        self,
        *,
        db: Engine,
        prompts: PromptLibrary,
        store: PromptStore,
        recommender: RecommendationService,
        llm: LLMClient | None,
        vocabulary: Callable[[], CheckVocabulary],
        max_tokens: int,
        top_n: int,
        grammar: GrammarSetting = "auto",
    ) -> None:
        self.db = db
        self.prompts = prompts
        self.store = store
        self.recommender = recommender
        self.llm = llm
        self.vocabulary = vocabulary
        self.max_tokens = max_tokens
        self.grammar = grammar  # previews write under the grammar the explanations use
        self.top_n = top_n

    # -- reading --

    def name(self, raw: str) -> str:
        name = raw if raw.endswith(".j2") else f"{raw}.j2"
        if name not in self.prompts.names():
            raise NotFoundError("prompt", raw)
        return name

    def list_prompts(self) -> list[PromptSummary]:
        return [self._summary(name) for name in self.prompts.names()]

    def get(self, raw: str) -> PromptDetail:
        name = self.name(raw)
        summary = self._summary(name)
        source = self.prompts.source(name)
        spec = self.prompts.variables(name)
        return PromptDetail(
            **summary.model_dump(),
            source=source.text,
            file_source=self.prompts.file_source(name),
            variables_used=sorted(self.prompts.declared(source.text)),
            variables_allowed=sorted(spec.allowed),
            variables_required=sorted(spec.required),
        )

    def versions(self, raw: str) -> list[PromptVersionOut]:
        name = self.name(raw)
        rows = self.store.history(name)
        return [
            PromptVersionOut(
                version=r.version,
                author=r.author,
                created_at=r.created_at,
                note=r.note,
                source=r.source,
                in_effect=i == 0,
            )
            for i, r in enumerate(rows)
        ]

    def check(self, raw: str, source: str) -> PromptCheck:
        """Run the same validation as a save, without storing: every problem, on its line."""
        name = self.name(raw)
        spec = self.prompts.variables(name)
        problems: list[PromptProblem] = []
        try:
            self._validate(name, source)
        except PromptInvalid as exc:
            problems = exc.problems
        try:
            used = sorted(self.prompts.declared(source))
        except PromptError:
            used = []
        return PromptCheck(
            name=name,
            ok=not problems,
            problems=problems,
            variables_used=used,
            variables_allowed=sorted(spec.allowed),
            variables_required=sorted(spec.required),
        )

    def shoppers(self, limit: int) -> list[ShopperRef]:
        """Shoppers a preview may be run for (editors cannot list users otherwise)."""
        with Session(self.db) as session:
            page = crud.list_users(session=session, limit=min(limit, MAX_SHOPPERS), offset=0)
        return [ShopperRef(id=u.id, name=u.full_name or u.username) for u in page.items]

    # -- writing --

    def update(self, raw: str, source: str, *, author: str, note: str | None) -> PromptDetail:
        name = self.name(raw)
        self._validate(name, source)
        self.store.add(name, source, author=author, note=note)
        return self.get(name)

    def rollback(
        self, raw: str, version: int | None, *, author: str, note: str | None
    ) -> PromptDetail:
        """Store a new version equal to ``version`` (0: the file; None: the one before)."""
        name = self.name(raw)
        current = self.store.current(name)
        if current is None:
            raise InvalidInputError(f"{name} has no stored versions: the file is in effect")
        target = current.version - 1 if version is None else version
        if target < 0 or target >= current.version:
            raise InvalidInputError(
                f"version must be between 0 (the file) and {current.version - 1}"
            )
        if target == 0:
            self.store.add(name, None, author=author, note=note or "back to the file")
            return self.get(name)
        old = self.store.get(name, target)
        if old is None:
            raise NotFoundError(f"version of {name}", target)
        if old.source is None:
            self.store.add(name, None, author=author, note=note or f"back to version {target}")
            return self.get(name)
        self._validate(name, old.source)  # the code's variables may have changed since
        self.store.add(name, old.source, author=author, note=note or f"rollback to {target}")
        return self.get(name)

    # -- preview --

    def preview(
        self, raw: str, source: str | None, user_ids: Sequence[uuid.UUID] | None, sample: int
    ) -> PreviewResult:
        name = self.name(raw)
        library = self.prompts
        if source is not None:
            self._validate(name, source)
            library = self.prompts.with_draft(name, source)
        users = list(user_ids or self._sample_users(min(sample, MAX_PREVIEW_USERS)))
        ranker = copy.copy(self.recommender)  # the draft may be the user summary template
        ranker.prompts = library
        stats = ExplanationStats()  # previews must not count as production checks
        samples = [self._sample(library, ranker, user_id, stats) for user_id in users]
        result = PreviewResult(
            name=name,
            draft=source is not None,
            llm=self.llm is not None,
            samples=samples,
            render_errors=sum(1 for s in samples if s.error),
        )
        judged = [s for s in samples if s.first_check_passed is not None]
        if self.llm is not None and judged:
            result.first_attempt_pass_rate = round(
                sum(1 for s in judged if s.first_check_passed) / len(judged), 3
            )
            result.pass_rate = round(
                sum(1 for s in judged if s.explanation_source == "llm") / len(judged), 3
            )
        return result

    def _sample(
        self,
        library: PromptLibrary,
        ranker: RecommendationService,
        user_id: uuid.UUID,
        stats: ExplanationStats,
    ) -> PreviewSample:
        try:
            request = ranker.explanation_request(user_id, top_n=self.top_n)
        except PromptError as exc:  # a draft of the summary template; unknown users are 404
            return PreviewSample(user_id=user_id, user_name="?", rendered={}, error=str(exc))
        sample = PreviewSample(user_id=user_id, user_name=request.user_name, rendered={})
        sample.facts = [f.line() for f in request.facts().all_facts()]
        try:
            messages, _, _ = render_messages(library, request, self.max_tokens)
            sample.rendered = {
                "summary": request.summary,
                "system": messages[0].content,
                "user": messages[1].content,
                "template_explanation": TemplateExplainer(library).explain(request).text,
            }
        except PromptError as exc:
            sample.error = str(exc)
            return sample
        if self.llm is not None and request.items:
            explainer = LLMExplainer(
                client=self.llm,
                prompts=library,
                vocabulary=self.vocabulary,
                stats=stats,
                max_tokens=self.max_tokens,
                grammar=self.grammar,
            )
            outcome = explainer.explain_detailed(request)
            sample.explanation = outcome.explanation.text
            sample.explanation_source = outcome.explanation.source
            sample.fallback_reason = outcome.explanation.fallback_reason
            sample.llm_answers = list(outcome.answers)
            if outcome.checks:
                sample.first_check_passed = outcome.checks[0].ok
                sample.check_reasons = sorted({r for c in outcome.checks for r in c.reasons})
                names = {str(i.product.id): i.product.name for i in request.items}
                sample.failed_claims = [
                    FailedClaim(
                        attempt=attempt,
                        code=p.code,
                        reason=p.detail,
                        span=p.span,
                        product_id=p.product_id,
                        product_name=names.get(p.product_id or ""),
                    )
                    for attempt, check in enumerate(outcome.checks, start=1)
                    for p in check.problems
                ]
        return sample

    def _sample_users(self, count: int) -> list[uuid.UUID]:
        with Session(self.db) as session:
            page = crud.list_users(session=session, limit=count, offset=0)
        return [u.id for u in page.items]

    # -- helpers --

    def _summary(self, name: str) -> PromptSummary:
        current = self.store.current(name)
        stored: StoredPrompt | None = current if current and current.source is not None else None
        return PromptSummary(
            name=name,
            origin="db" if stored else "file",
            version=stored.version if stored else 0,
            author=current.author if current else None,
            updated_at=current.created_at if current else None,
        )

    def _validate(self, name: str, source: str) -> None:
        try:
            self.prompts.validate(name, source)
            trial_render(self.prompts.with_draft(name, source), name, self.max_tokens)
        except PromptError as exc:
            problems = locate_problems(self.prompts.variables(name), source, exc)
            raise PromptInvalid(f"{name}: {exc}", problems) from exc
