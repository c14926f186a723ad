"""Which explanation a recommendation answer carries, and whether the model is asked now.

By default (``auto``) the storefront never waits for a model: it serves the checked LLM text
cached for exactly these items, or the template at once with ``pending`` status and a job
queued for the background explainers (``backend.jobs.explanations``).
"""

from __future__ import annotations

import uuid
from typing import Literal, Protocol
from urllib.parse import urlencode

from backend.infra.explanation_queue import SHOPPER, ExplanationJob
from backend.llm.explainer import Explainer
from backend.llm.explanation_cache import CachedExplainer
from backend.llm.writer import Explanation, ExplanationRequest
from backend.recommender.strategies import CandidateFilter

# auto: checked LLM text cached for exactly these items, else the template at once and a job
# queued; wait: ask the model within the request's deadline; template: never involve it.
ExplainMode = Literal["auto", "wait", "template"]
ExplanationStatus = Literal["ready", "pending", "template"]


class ExplanationJobs(Protocol):
    """The background explanation queue, as the request path sees it."""

    def submit(self, job: ExplanationJob) -> str:
        """ "queued", "duplicate" (already queued or running) or "full"."""
        ...


def choose_explanation(
    explainer: Explainer,
    request: ExplanationRequest,
    jobs: ExplanationJobs | None,
    *,
    strategy: str | None,
    top_n: int,
    filters: CandidateFilter,
    explain: ExplainMode,
) -> tuple[Explanation, ExplanationStatus, bool]:
    """The explanation, its status, and whether the answer may be cached (not when the
    queue refused the job: the next visit tries again)."""
    if not isinstance(explainer, CachedExplainer):  # no LLM: the template, which says why
        return explainer.explain(request), "template", True
    if explain == "template":
        return explainer.template(request, "template_requested"), "template", True
    if explain == "wait" or jobs is None:
        explanation = explainer.explain(request)  # the model within the request deadline
        return explanation, "ready" if explanation.source == "llm" else "template", True
    found = explainer.lookup(request)
    if found is not None:
        return found, "ready" if found.source == "llm" else "template", True
    job = job_for(explainer, request, strategy=strategy, top_n=top_n, filters=filters)
    if job is None:
        return explainer.template(request, "no_items"), "template", True
    if jobs.submit(job) == "full":
        return explainer.template(request, "queue_full"), "template", False
    return explainer.template(request, None), "pending", True


def job_for(
    explainer: CachedExplainer,
    request: ExplanationRequest,
    *,
    strategy: str | None,
    top_n: int,
    filters: CandidateFilter,
) -> ExplanationJob | None:
    """The background job that writes this list's explanation (None: nothing to explain)."""
    if not request.items or request.user_id is None:
        return None
    return ExplanationJob(
        user_id=request.user_id,
        strategy=strategy or "",  # none named: the default or the experiment's
        top_n=top_n,
        item_ids=tuple(item.product.id for item in request.items),
        version=explainer.cache_version(),
        priority=SHOPPER,
        filters=job_filters(filters),
    )


def job_filters(filters: CandidateFilter) -> tuple[tuple[str, object], ...]:
    """A list's filters as a job carries them (only those set)."""
    f = filters
    pairs = (
        ("category", f.category),
        ("min_price", f.min_price),
        ("max_price", f.max_price),
        ("in_stock", f.in_stock or None),
    )
    return tuple((k, v) for k, v in pairs if v is not None)


def stream_path(
    user_id: uuid.UUID, top_n: int, strategy: str | None, filters: CandidateFilter
) -> str | None:
    """Where the text of a pending explanation can be streamed from (lists without filters:
    the stream explains the unfiltered list; a filtered one polls its own URL)."""
    if filters != CandidateFilter():
        return None
    query: dict[str, object] = {"top_n": top_n}
    if strategy:
        query["algorithm"] = strategy
    return f"/recommend/{user_id}/explanation/stream?{urlencode(query)}"
