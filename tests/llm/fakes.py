"""A fake LLM at our own interface, and a tiny explained shop to check answers against."""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal

import pytest

from backend.llm.check import CheckVocabulary
from backend.llm.client import (
    ChatMessage,
    CircuitStatus,
    Completion,
    LLMError,
    ResponseSchema,
    Tool,
)
from backend.llm.writer import ExplainedItem, ExplanationRequest
from backend.recommender.evidence import Evidence, PastInteraction, SourceShare, WeightedMatch
from backend.recommender.snapshot import ProductRecord

Response = str | LLMError | Callable[[Sequence[ChatMessage]], str]


def uses_fake_llm(*responses: Response) -> pytest.MarkDecorator:
    """Runs the test's app (the ``components`` fixture and what uses it) on a fresh
    ``FakeLLM(responses)``, which the test receives as its ``fake_llm`` argument."""
    return pytest.mark.parametrize("fake_llm", [list(responses)], indirect=True, ids=["fake-llm"])


class FakeLLM:
    """A queue of canned responses and a history of the prompts it was sent."""

    def __init__(self, responses: Iterable[Response] = (), model: str = "fake-model") -> None:
        self.responses: deque[Response] = deque(responses)
        self.history: list[list[ChatMessage]] = []
        self.answers: list[str] = []
        self.model = model
        self.calls: list[dict[str, object]] = []  # the options of each complete()

    def add(self, *responses: Response) -> None:
        self.responses.extend(responses)

    def _next(self, messages: Sequence[ChatMessage]) -> str:
        self.history.append(list(messages))
        assert self.responses, "the fake LLM was called more often than the test expected"
        response = self.responses.popleft()
        if isinstance(response, LLMError):
            raise response
        text = response(messages) if callable(response) else response
        self.answers.append(text)
        return text

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_mode: bool = False,
        tool: Tool | None = None,
        schema: ResponseSchema | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        self.calls.append({"json_mode": json_mode, "schema": schema, "max_tokens": max_tokens})
        return Completion(text=self._next(messages), model=self.model, finish_reason="stop")

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        schema: ResponseSchema | None = None,
    ) -> Iterator[str]:
        text = self._next(messages)
        for i in range(0, len(text), 7):
            yield text[i : i + 7]

    def circuit(self) -> CircuitStatus:
        return CircuitStatus("closed", 0)


def product(
    name: str, category: str, tags: Sequence[str], price: str, description: str = "", qty: int = 5
) -> ProductRecord:
    return ProductRecord(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"test-product:{name}"),
        name=name,
        category=category,
        price=Decimal(price),
        quantity=qty,
        tags=tuple(tags),
        description=description,
    )


EARBUDS = product(
    "Wireless Earbuds",
    "Electronics",
    ["electronics", "audio", "earbuds", "wireless", "black"],
    "59.99",
    "True-wireless earbuds with Bluetooth pairing and a pocketable charging case.",
)
LAMP = product("Desk Lamp", "Home", ["home", "lighting", "desk", "led"], "34.00")
TENT = product(
    "Trailhead Dome Tent",
    "Sports & Outdoors",
    ["sports-outdoors", "camping", "tent", "waterproof", "green"],
    "129.00",
)
HEADPHONES = product(
    "Studio Headphones", "Electronics", ["audio", "wireless", "bluetooth"], "89.00"
)
BOOTS = product("Hiking Boots", "Sports & Outdoors", ["sports-outdoors", "hiking"], "99.00")
OTHERS = [
    HEADPHONES,
    BOOTS,
    product("Yoga Mat", "Sports & Outdoors", ["fitness", "purple"], "25.00"),
    product("Cast Iron Skillet", "Kitchen", ["kitchen", "cookware"], "45.00"),
    product("Electric Kettle", "Kitchen", ["kitchen", "electric", "stainless-steel"], "29.00"),
    product("Pet Bed Deluxe", "Pet Supplies", ["pet-supplies", "dog", "grey"], "49.00"),
    product("Leather Wallet Classic", "Accessories", ["accessories", "leather", "brown"], "39.00"),
]
CATALOG = [EARBUDS, LAMP, TENT, *OTHERS]

EARBUDS_EVIDENCE = Evidence(
    strategy="weighted",
    score=0.92,
    sources=[SourceShare(name="weighted", share=1.0, detail="matches what you interacted with")],
    matched_categories=[WeightedMatch(name="Electronics", weight=2.5)],
    matched_tags=[
        WeightedMatch(name="audio", weight=1.5),
        WeightedMatch(name="wireless", weight=1),
    ],
    because_of=[
        PastInteraction(product_id=HEADPHONES.id, product_name=HEADPHONES.name, action="purchase")
    ],
    popularity_rank=3,
    interaction_count=12,
)
LAMP_EVIDENCE = Evidence(
    strategy="weighted",
    score=0.0,
    sources=[SourceShare(name="popularity", share=1.0, detail="among the most popular products")],
    popularity_rank=1,
    interaction_count=40,
)
TENT_EVIDENCE = Evidence(
    strategy="weighted",
    score=0.61,
    sources=[SourceShare(name="weighted", share=1.0, detail="matches what you interacted with")],
    matched_categories=[WeightedMatch(name="Sports & Outdoors", weight=1.2)],
    matched_tags=[WeightedMatch(name="camping", weight=0.8)],
    because_of=[PastInteraction(product_id=BOOTS.id, product_name=BOOTS.name, action="view")],
    popularity_rank=25,
    interaction_count=2,
)

ITEMS = (
    ExplainedItem(EARBUDS, EARBUDS_EVIDENCE),
    ExplainedItem(LAMP, LAMP_EVIDENCE),
    ExplainedItem(TENT, TENT_EVIDENCE),
)
USER_ID = uuid.UUID("00000000-0000-0000-0000-00000000a11c")
REQUEST = ExplanationRequest(
    user_name="Alice Lee",
    summary="Recently purchased: Studio Headphones; recently viewed: Hiking Boots.",
    items=ITEMS,
    user_id=USER_ID,
)


def vocabulary() -> CheckVocabulary:
    return CheckVocabulary.build(CATALOG)


# Facts of ITEMS (see ``REQUEST.facts()``): P1 cites F1-F7, P2 F8-F11, P3 F12-F18.
GOOD_REASONS: dict[str, tuple[str, list[str]]] = {
    "P1": (
        "Since you bought the Studio Headphones, these wireless earbuds suit your love of audio.",
        ["F1", "F3"],
    ),
    "P2": ("One of the most popular picks in the shop, ranked #1 by shoppers.", ["F8"]),
    "P3": (
        "A waterproof tent for camping, to go with the Hiking Boots you viewed.",
        ["F12", "F14"],
    ),
}
GOOD_INTRO = "Hi Alice, here are three picks for you."

Reason = str | tuple[str, list[str]]


def answer(
    reasons: dict[str, Reason] | None = None,
    intro: str = GOOD_INTRO,
    intro_fact_ids: list[str] | None = None,
    **overrides: Reason,
) -> str:
    """An answer in the grounded format; a reason given as a bare string cites nothing (it
    is then judged against all of its product's facts, as for servers that drop the ids)."""
    chosen: dict[str, Reason] = dict(reasons if reasons is not None else GOOD_REASONS)
    chosen.update(overrides)
    out = []
    for ref, value in chosen.items():
        if isinstance(value, tuple):
            out.append({"product_id": ref, "reason": value[0], "fact_ids": value[1]})
        else:
            out.append({"product_id": ref, "reason": value})
    return json.dumps({"intro": intro, "intro_fact_ids": intro_fact_ids or [], "reasons": out})


def good_answer() -> str:
    return answer()
