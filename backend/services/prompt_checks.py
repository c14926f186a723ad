"""How a draft prompt is checked before it is stored: a trial render on a fixed sample request
the way the code renders it, and, when it fails, each problem on the line it is on."""

from __future__ import annotations

import traceback
import uuid
from decimal import Decimal
from typing import Literal

from jinja2 import Environment, TemplateSyntaxError, meta, nodes
from pydantic import BaseModel

from backend.llm.explainer import LLMExplainer, TemplateExplainer
from backend.llm.prompts import PromptError, PromptLibrary, TemplateVariables
from backend.llm.writer import ExplainedItem, ExplanationRequest, render_messages
from backend.recommender.evidence import Evidence, PastInteraction, SourceShare, WeightedMatch
from backend.recommender.snapshot import ProductRecord

ProblemKind = Literal["syntax", "unknown_variable", "missing_variable", "render"]


class PromptProblem(BaseModel):
    """One reason a version is refused, placed on its line where the template has one."""

    kind: ProblemKind
    message: str
    line: int | None = None  # 1-based line of the source; None: the template as a whole
    variable: str | None = None


_PLAIN = Environment()  # parses like the library's sandbox; used only for line numbers


def locate_problems(spec: TemplateVariables, source: str, exc: PromptError) -> list[PromptProblem]:
    """Turn the validator's one-line refusal into problems with the line each one is on."""
    cause = exc.__cause__
    if isinstance(cause, TemplateSyntaxError):
        return [
            PromptProblem(kind="syntax", message=cause.message or str(cause), line=cause.lineno)
        ]
    try:
        ast = _PLAIN.parse(source)
    except TemplateSyntaxError:  # the library parsed it; cannot happen, but never a 500
        return [PromptProblem(kind="render", message=str(exc))]
    names = list(ast.find_all(nodes.Name))
    assigned = {n.name for n in names if n.ctx in ("store", "param")}
    read = meta.find_undeclared_variables(ast) - set(_PLAIN.globals)
    unknown = read - spec.allowed - assigned
    problems = [
        PromptProblem(
            kind="unknown_variable",
            message=f"unknown variable '{n.name}'; this template may use "
            f"{', '.join(sorted(spec.allowed)) or 'no variables'}",
            line=n.lineno,
            variable=n.name,
        )
        for n in sorted(names, key=lambda n: n.lineno)
        if n.ctx == "load" and n.name in unknown
    ]
    problems = list({(p.line, p.variable): p for p in problems}.values())
    problems += [
        PromptProblem(
            kind="missing_variable",
            message=f"required variable '{var}' is not used: the code needs it in this template",
            variable=var,
        )
        for var in sorted(spec.required - read)
    ]
    if problems:
        return problems
    return [PromptProblem(kind="render", message=str(exc), line=_template_line(exc))]


def _template_line(exc: BaseException) -> int | None:
    """The line of the edited template a render failed on (Jinja rewrites the traceback)."""
    cause = exc.__cause__ or exc
    frames = traceback.extract_tb(cause.__traceback__)
    lines = [f.lineno for f in frames if f.filename == "<template>"]
    return lines[-1] if lines else None


def trial_request() -> ExplanationRequest:
    """Two products, one matched by profile and one popular: every evidence field is set."""

    def product(name: str, category: str, tags: tuple[str, ...], price: str) -> ProductRecord:
        return ProductRecord(
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"trial:{name}"),
            name=name,
            category=category,
            price=Decimal(price),
            quantity=3,
            tags=tags,
        )

    matched = Evidence(
        strategy="weighted",
        score=0.9,
        sources=[SourceShare(name="weighted", share=1.0, detail="matches what you viewed")],
        matched_categories=[WeightedMatch(name="Electronics", weight=2.0)],
        matched_tags=[WeightedMatch(name="audio", weight=1.0)],
        because_of=[
            PastInteraction(
                product_id=uuid.uuid4(), product_name="Studio Headphones", action="purchase"
            )
        ],
        popularity_rank=12,
        interaction_count=4,
    )
    popular = Evidence(
        strategy="weighted",
        score=0.0,
        sources=[SourceShare(name="popularity", share=1.0, detail="among the most popular")],
        popularity_rank=1,
        interaction_count=40,
    )
    return ExplanationRequest(
        user_name="Sample Shopper",
        summary="Recently purchased: Studio Headphones.",
        items=(
            ExplainedItem(product("Wireless Earbuds", "Electronics", ("audio",), "59.99"), matched),
            ExplainedItem(product("Desk Lamp", "Home", ("lighting",), "34.00"), popular),
        ),
        user_id=None,
    )


def trial_render(library: PromptLibrary, name: str, max_tokens: int) -> None:
    """Render ``name`` the way the code does, on a sample request; raises PromptError."""
    request = trial_request()
    if name in (LLMExplainer.system_template, LLMExplainer.user_template):
        render_messages(library, request, max_tokens)
    elif name == LLMExplainer.retry_template:
        library.render(name, problems=["the reason for Desk Lamp states the price '$20'"])
    elif name == LLMExplainer.render_template:
        library.render(
            name,
            user_name=request.user_name,
            intro="Hi Sample Shopper!",
            reasons=[
                {
                    "product_id": str(i.product.id),
                    "name": i.product.name,
                    "category": i.product.category,
                    "price": f"{i.product.price:.2f}",
                    "reason": "It fits what you like.",
                }
                for i in request.items
            ],
        )
    elif name == TemplateExplainer.template:
        TemplateExplainer(library).explain(request)
        TemplateExplainer(library).explain(
            ExplanationRequest(user_name="Sample Shopper", summary="", items=())
        )
    elif name == "user_summary.j2":
        for lists in ([], ["Studio Headphones"]):
            library.render(
                name,
                purchased=lists,
                viewed=lists,
                carted=lists,
                wishlisted=lists,
                categories=lists,
                searches=lists,
            )
