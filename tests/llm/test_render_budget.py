"""The metered sandbox renders exactly what Jinja's own sandbox renders, and still stops a
runaway template wherever it repeats work: in a loop (whatever its body), a recursive loop,
or a ``~`` that grows a string.

The differential tests render every shipped template through the budgeted library and
through a plain ``SandboxedEnvironment`` with the same options (no budget, Jinja's own
filters and compiler), over generated contexts: a metering change that alters a single
character fails here.
"""

from __future__ import annotations

import random
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from backend.config import PROJECT_ROOT
from backend.llm.explainer import TemplateExplainer
from backend.llm.prompts import PromptLibrary, RenderBudget, TemplateBudgetExceeded
from backend.llm.writer import ExplainedItem, ExplanationRequest
from backend.recommender.evidence import (
    CoInteraction,
    Evidence,
    Nearby,
    PastInteraction,
    SegmentMatch,
    SimilarItem,
    SourceShare,
    WeightedMatch,
)
from backend.recommender.snapshot import ProductRecord
from backend.text import slug

PROMPTS = PROJECT_ROOT / "prompts"
NAMES = ["Trail Tent", "The Trail Guide", "Desk Lamp", "Wireless Earbuds", "The Kettle", "Mug"]
CATEGORIES = ["Sports & Outdoors", "Home", "Electronics", "Books", "Kitchen"]
TAGS = ["sports-outdoors", "waterproof", "home", "audio", "lighting", "camping", "kitchen"]
ACTIONS = ["view", "click", "add_to_cart", "wishlist", "purchase", "search", "unknown_action"]


def reference(name: str, context: dict[str, Any]) -> str:
    """``name`` rendered by Jinja's sandbox with the library's options and clean-up."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(PROMPTS)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    text = env.get_template(name).render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def reference_item(item: ExplainedItem) -> dict[str, object]:
    """An item's template context as the explainer built it before it was cached."""
    return {
        "product_id": str(item.product.id),
        "name": item.product.name,
        "category": item.product.category,
        "category_slug": slug(item.product.category),
        "price": f"{item.product.price:.2f}",
        "evidence": item.evidence.model_dump(mode="json"),
    }


def generated_item(rng: random.Random) -> ExplainedItem:
    def some(make: Any, most: int = 3) -> list[Any]:
        return [make() for _ in range(rng.choice([0, 0, 1, most]))]

    def past() -> tuple[uuid.UUID, str]:
        return uuid.uuid4(), rng.choice(NAMES)

    category = rng.choice(CATEGORIES)
    pid, pname = past()
    evidence = Evidence(
        strategy=rng.choice(["weighted", "hybrid", "cf"]),
        score=rng.random(),
        sources=[SourceShare(name="popularity", share=1.0, detail="popular")],
        matched_categories=some(
            lambda: WeightedMatch(name=rng.choice(CATEGORIES), weight=rng.random())
        ),
        # The category's own slug among the tags half the time: the template drops it.
        matched_tags=some(
            lambda: WeightedMatch(name=rng.choice([*TAGS, slug(category)]), weight=rng.random()),
            most=5,
        ),
        because_of=some(
            lambda: PastInteraction(
                product_id=uuid.uuid4(), product_name=rng.choice(NAMES), action=rng.choice(ACTIONS)
            )
        ),
        popularity_rank=rng.randint(1, 500),
        interaction_count=rng.randint(0, 90),
        similar_to=(
            SimilarItem(product_id=pid, product_name=pname, similarity=rng.random())
            if rng.random() < 0.4
            else None
        ),
        co_interactions=some(
            lambda: CoInteraction(
                product_id=pid if rng.random() < 0.5 else uuid.uuid4(),
                product_name=pname if rng.random() < 0.5 else rng.choice(NAMES),
                count=rng.randint(1, 9),
            )
        ),
        segment=(
            SegmentMatch(segment=2, label="outdoor shoppers", shoppers=rng.randint(0, 9), size=10)
            if rng.random() < 0.3
            else None
        ),
        nearby=(
            Nearby(distance_km=round(rng.random() * 20, 1), radius_km=25.0)
            if rng.random() < 0.3
            else None
        ),
    )
    product = ProductRecord(
        id=uuid.uuid4(),
        name=rng.choice(NAMES) + f" {rng.randint(1, 99)}",
        category=category,
        price=Decimal(rng.randint(100, 99_999)) / 100,
        quantity=rng.randint(0, 5),
        tags=(),
    )
    return ExplainedItem(product=product, evidence=evidence)


@pytest.mark.parametrize("seed", range(40))
def test_the_template_explanation_is_what_jinjas_sandbox_renders(seed: int):
    rng = random.Random(seed)
    items = tuple(generated_item(rng) for _ in range(rng.choice([0, 1, 2, 10])))
    request = ExplanationRequest(user_name=rng.choice(["Amara", "Bo"]), summary="", items=items)
    text = TemplateExplainer(PromptLibrary(PROMPTS)).explain(request).text
    expected = reference(
        "explanation.j2",
        {
            "user_name": request.user_name,
            "summary": "",
            "items": [reference_item(i) for i in items],
        },
    )
    assert text == expected


def test_the_same_product_in_two_lists_gets_the_same_context_with_its_own_evidence():
    rng = random.Random(3)
    first = generated_item(rng)
    again = ExplainedItem(product=first.product, evidence=generated_item(rng).evidence)
    library = PromptLibrary(PROMPTS)
    for item in (first, again, first):
        text = TemplateExplainer(library).explain(ExplanationRequest("Bo", "", (item,))).text
        context = {"user_name": "Bo", "summary": "", "items": [reference_item(item)]}
        assert text == reference("explanation.j2", context)


@pytest.mark.parametrize("seed", range(20))
def test_the_summary_is_what_jinjas_sandbox_renders(seed: int):
    rng = random.Random(seed)

    def names() -> list[str]:
        return rng.sample(NAMES, rng.choice([0, 0, 1, 3]))

    context = {
        "purchased": names(),
        "viewed": names(),
        "carted": names(),
        "wishlisted": names(),
        "categories": rng.sample(CATEGORIES, rng.choice([0, 1, 3])),
        "searches": rng.sample(['red "rain" jacket', "tent", "naïve café"], rng.choice([0, 2])),
    }
    assert PromptLibrary(PROMPTS).render("user_summary.j2", **context) == reference(
        "user_summary.j2", context
    )


def test_the_explanation_templates_render_as_jinjas_sandbox_does_on_their_trial_context(
    monkeypatch: pytest.MonkeyPatch,
):
    """The LLM explanation's templates, rendered the way the code renders them, on the
    admin's trial request (the chat's have no trial context; they use the same filters,
    loops and calls as these)."""
    from backend.services.prompt_checks import trial_render

    library = PromptLibrary(PROMPTS)
    calls: list[tuple[str, dict[str, Any], str]] = []
    real = PromptLibrary.render

    def recorded(self: PromptLibrary, name: str, /, **context: Any) -> str:
        text = real(self, name, **context)
        calls.append((name, context, text))
        return text

    monkeypatch.setattr(PromptLibrary, "render", recorded)
    for name in library.names():
        trial_render(library, name, max_tokens=150)
    assert {name for name, _, _ in calls} == {n for n in library.names() if "chat" not in n}
    for name, context, text in calls:
        assert text == reference(name, context), name


# --- a runaway template is still stopped --------------------------------------------------


def stopped(source: str, budget: RenderBudget | None = None) -> str:
    library = PromptLibrary(PROMPTS, budget=budget).with_draft("t.j2", source)
    with pytest.raises(TemplateBudgetExceeded) as raised:
        library.render("t.j2")
    return str(raised.value)


@pytest.mark.parametrize(
    "source",
    [
        # A body that calls nothing: 9M iterations were never counted (0.4 s past a 0.05 s
        # budget; a 200k-character string looped in itself would run for hours).
        "{% set xs = 'x' * 3000 %}{% for a in xs %}{% for b in xs %}{% set c = 1 %}"
        "{% endfor %}{% endfor %}",
        # An if that filters every item out: the body never runs, the items are still drawn.
        "{% set xs = 'x' * 3000 %}{% for a in xs %}{% for b in xs if false %}{% endfor %}"
        "{% endfor %}",
        "{% for k in ({'a': 1} | dictsort) * 200000 %}{% endfor %}",
        # A recursive loop's deeper levels are loops too.
        "{% set xs = range(300) | list %}{% for x in [1, 2, 3] recursive %}"
        "{% if loop.depth < 3 %}{{ loop(xs) }}{% endif %}{% endfor %}",
    ],
)
def test_every_item_a_loop_draws_is_counted(source: str):
    assert "loop limit" in stopped(source)


def test_a_loop_over_a_list_stops_on_time_too():
    source = "{% set xs = 'x' * 3000 %}{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}"
    budget = RenderBudget(seconds=0.01, loop_iterations=10**9, output_chars=10**9)
    assert "time limit" in stopped(source, budget)


def test_filters_applied_item_by_item_by_map_stop_on_time():
    """No loop of the template's: ``map`` calls the filter per item, and each call ticks."""
    source = "{{ ('x' * 100000) | list | map('upper') | map('center', 30) | list | length }}"
    budget = RenderBudget(seconds=0.01, loop_iterations=10**9, output_chars=10**9)
    assert "time limit" in stopped(source, budget)


@pytest.mark.parametrize(
    "source",
    [
        "{% set a = 'x' * 100000 %}{% set a = a ~ a ~ a %}",  # no loop, no call, no operator
        "{% set ns = namespace(s='x' * 1000) %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    ],
)
def test_a_string_grown_with_tilde_is_sized(source: str):
    assert "output limit" in stopped(source)


def test_loops_within_the_budget_render_as_before():
    source = (
        "{% for x in items if x.n % 2 %}{{ x.n }},{% endfor %}|"
        "{% for k, v in pairs | dictsort %}{{ k }}={{ v }};{% else %}none{% endfor %}|"
        "{% for x in tree recursive %}{{ x.n }}{% if x.kids %}({{ loop(x.kids) }}){% endif %}"
        "{% endfor %}|{% for i in range(3) %}{{ loop.index }}{{ '-' ~ i }}{% endfor %}"
    )
    context = {
        "items": [{"n": n} for n in range(7)],
        "pairs": {"b": 2, "a": 1},
        "tree": [
            {"n": 1, "kids": [{"n": 2, "kids": [{"n": 3, "kids": []}]}]},
            {"n": 4, "kids": []},
        ],
    }
    library = PromptLibrary(PROMPTS).with_draft("t.j2", source)
    assert library.render("t.j2", **context) == "1,3,5,|a=1;b=2;|1(2(3))4|1-02-13-2"


@pytest.mark.parametrize(
    "source",
    ["{{ '{:>999999999}'.format(1) }}", "{{ '{x:>99999999}'.format_map({'x': 1}) }}"],
)
def test_a_format_width_over_the_output_limit_is_refused(source: str):
    assert "output limit" in stopped(source)


def test_other_string_methods_with_long_numbers_in_the_string_still_run():
    source = "{{ 'item 12345678'.startswith('item') }} {{ '{:>3}'.format(7) }}"
    assert PromptLibrary(PROMPTS).with_draft("t.j2", source).render("t.j2") == "True   7"
