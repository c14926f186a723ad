"""Numbered facts: what the LLM may say about each recommended product, and nothing else.

Each recommended item's evidence and product record become short sentences with ids
("F3: you viewed the Summitline Resistance Bands Set 3 days ago"). The prompt lists them,
the answer cites the ids each reason relies on, and the check accepts a reason's words only
from the facts it cites, the product's own record and a small reviewed vocabulary. A fact
also *licenses* a few words that restate it (a past view allows "looked at", a fact about
3 days ago allows "a few days ago", a rank of 2 allows "popular"): that is where the
meaning of each fact lives, next to the fact.

Ids are global over one answer (F1..Fn across all products) so a reason citing another
product's fact is caught. ``U`` facts are about the request (what the shopper did or asked).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from backend.recommender.evidence import Evidence
from backend.recommender.snapshot import ProductRecord
from backend.text import NUMBER, NUMBER_WORDS, slug, stems

FactKind = Literal[
    "past",
    "similar",
    "co_interaction",
    "category",
    "tag",
    "popularity",
    "segment",
    "nearby",
    "price",
    "stock",
    "own_tags",
    "source",
    "request",
]

PAST_VERB = {
    "view": "viewed",
    "click": "viewed",
    "add_to_cart": "added to your cart",
    "remove_from_cart": "had in your cart",
    "wishlist": "wishlisted",
    "purchase": "bought",
}
# Other ways to say each past action; the check also uses them to find a wrong action.
ACTION_WORDS: dict[str, frozenset[str]] = {
    "purchase": frozenset(
        "bought buy purchased purchase ordered order owned own picked up".split()
    ),
    "view": frozenset(
        "viewed view looked look browsed browse checked out eyed eyeing explored clicked".split()
    ),
    "cart": frozenset("cart basket added add put".split()),
    "wishlist": frozenset("wishlisted wishlist saved save bookmarked".split()),
}
ACTION_GROUP = {
    "view": "view",
    "click": "view",
    "purchase": "purchase",
    "add_to_cart": "cart",
    "remove_from_cart": "cart",
    "wishlist": "wishlist",
}
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth".split()
POPULAR_RANK = 10  # at or above this rank an item may be called popular
MAX_PAST = 3  # past items per product (the prompt stays short; the first are the closest)
MAX_CO = 2
_SIMILAR_WORDS = frozenset("like close related alike akin same similar similarity".split())
_CO_WORDS = frozenset(
    "people others also together alongside shopper engaged interest interested spent".split()
)
_POPULAR_WORDS = frozenset(
    "popular popularity favourite favorite favourites favorites top most loved shoppers "
    "people ranked rank crowd number among interest shown already".split()
)
_DIGITS = re.compile(r"\d+")
_NUMBER_NAMES = {v: k for k, v in NUMBER_WORDS.items() if isinstance(v, int) and v <= 20}


@dataclass(frozen=True, slots=True)
class Fact:
    id: str  # "F3", "U1"
    kind: FactKind
    text: str  # what the prompt shows
    licenses: frozenset[str] = frozenset()  # more words that restate it (surface forms)
    # Past products the fact names, with the action the shopper took (for wrong actions).
    names: tuple[tuple[str, str | None], ...] = ()
    # The fact as a clause a reason can say to the shopper ("it costs $23.49"), in words the
    # fact's text and licenses back; what the "facts" answer grammar offers a small model.
    clause: str = ""
    # False for a fact that is true but speaks against the product ("it is out of stock"):
    # the prompt shows it and a reason may mention it, but the "facts" grammar, which makes
    # reasons out of clauses alone, does not offer it as a reason to buy.
    reason: bool = True

    def line(self) -> str:
        return f"{self.id}: {self.text}"

    @property
    def allowed_stems(self) -> frozenset[str]:
        return _fact_stems(self.text, self.licenses)

    @property
    def numbers(self) -> frozenset[Decimal]:
        return frozenset(numbers_in(self.text))


_STEM_CACHE: dict[tuple[str, frozenset[str]], frozenset[str]] = {}


def _fact_stems(text: str, licenses: frozenset[str]) -> frozenset[str]:
    key = (text, licenses)
    found = _STEM_CACHE.get(key)
    if found is None:
        found = frozenset(stems(text)) | frozenset(stems(" ".join(licenses)))
        if len(_STEM_CACHE) > 50_000:
            _STEM_CACHE.clear()
        _STEM_CACHE[key] = found
    return found


def numbers_in(text: str) -> set[Decimal]:
    """The numbers a text states, and every digit run in it ("5.5qt" also gives 5)."""
    out: set[Decimal] = {Decimal(d).normalize() for d in _DIGITS.findall(text)}
    for m in NUMBER.finditer(text):
        try:
            out.add(Decimal(m.group(0).replace(",", "")).normalize())
        except ArithmeticError:
            continue
    return out


class FactItem(Protocol):
    @property
    def product(self) -> ProductRecord: ...

    @property
    def evidence(self) -> Evidence: ...


@dataclass(frozen=True, slots=True)
class ProductFacts:
    ref: str  # "P1"
    product: ProductRecord
    facts: tuple[Fact, ...]


@dataclass(frozen=True, slots=True)
class FactSheet:
    """All facts of one answer: per product, and about the request."""

    products: tuple[ProductFacts, ...]
    request: tuple[Fact, ...] = ()
    by_id: Mapping[str, Fact] = field(default_factory=dict)

    def all_facts(self) -> Iterable[Fact]:
        for p in self.products:
            yield from p.facts
        yield from self.request


def when(days: float | None) -> tuple[str, frozenset[str]]:
    """Roughly when, as the prompt says it, and the time words that restate it."""
    if days is None:
        return "", frozenset()
    d = max(0, int(days))
    common = {"recently", "recent", "lately", "ago", "back", "earlier"}
    if d == 0:
        return "today", frozenset(common | {"today", "just", "earlier"})
    if d == 1:
        return "yesterday", frozenset(common | {"yesterday", "day"})
    if d < 7:
        words = {"days", "few", "this", "week", "couple"} if d <= 3 else {"days", "few", "week"}
        return f"{d} days ago", frozenset(common | words | {_NUMBER_NAMES.get(d, "")} - {""})
    if d < 14:
        return "last week", frozenset(common | {"last", "week", "weeks"})
    if d < 60:
        weeks = d // 7
        return f"{weeks} weeks ago", frozenset(
            common | {"weeks", "few", "couple", "month", _NUMBER_NAMES.get(weeks, "")} - {""}
        )
    return f"{d // 30} months ago", frozenset({"ago", "back", "months", "while", "month", "time"})


def _listed(names: Iterable[str]) -> str:
    """ "a, b and c": a list as a sentence says it."""
    items = list(names)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _shoppers(n: int) -> str:
    return f"{n} shopper" if n == 1 else f"{n} shoppers"


def _number_words(text: str) -> set[str]:
    out = set()
    for value in numbers_in(text):
        if value == value.to_integral_value() and int(value) in _NUMBER_NAMES:
            out.add(_NUMBER_NAMES[int(value)])
    return out


def _past_text(name: str, action: str, days: float | None) -> tuple[str, frozenset[str]]:
    verb = PAST_VERB.get(action, "interacted with")
    time_text, time_words = when(days)
    text = f"you {verb} the {name}" + (f" {time_text}" if time_text else "")
    group = ACTION_GROUP.get(action)
    licenses = set(time_words) | set(ACTION_WORDS.get(group or "", ()))
    return text, frozenset(licenses | {"your", "you"})


class _Numberer:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n}"


def product_facts(
    item: FactItem,
    ids: _Numberer,
    *,
    past_days: Mapping[uuid.UUID, float] | None = None,
) -> list[Fact]:
    """The facts of one recommended item, most specific first."""
    product, ev = item.product, item.evidence
    days = past_days or {}
    facts: list[Fact] = []

    def add(
        kind: FactKind,
        text: str,
        licenses: Iterable[str] = (),
        names: Iterable[tuple[str, str | None]] = (),
        clause: str = "",
        reason: bool = True,
    ) -> None:
        lic = frozenset(licenses) | frozenset(_number_words(text))
        facts.append(Fact(ids.next(), kind, text, lic, tuple(names), clause or text, reason))

    similar = ev.similar_to
    co_counts = {co.product_id: co.count for co in ev.co_interactions}
    past_ids = set()
    for past in ev.because_of[:MAX_PAST]:
        text, lic = _past_text(past.product_name, past.action, days.get(past.product_id))
        clause = text
        extra: set[str] = set()
        # What else links this past item to the product, said once, on the same line.
        if similar is not None and similar.product_id == past.product_id:
            text += f"; similarity {similar.similarity:.2f}"
            extra |= _SIMILAR_WORDS
        if past.product_id in co_counts:
            text += f"; {_shoppers(co_counts[past.product_id])} interacted with both"
            extra |= _CO_WORDS
        add("past", text, lic | extra, [(past.product_name, past.action)], clause)
        past_ids.add(past.product_id)
    if similar is not None and similar.product_id not in past_ids:
        add(
            "similar",
            f"similar to the {similar.product_name} (similarity {similar.similarity:.2f})",
            _SIMILAR_WORDS,
            [(similar.product_name, None)],
            f"it is similar to the {similar.product_name}",
        )
    others = [co for co in ev.co_interactions if co.product_id not in past_ids]
    for co in others[:MAX_CO]:
        add(
            "co_interaction",
            f"{_shoppers(co.count)} interacted with both this and the {co.product_name}",
            _CO_WORDS,
            [(co.product_name, None)],
        )
    if ev.matched_categories:
        names = ", ".join(m.name for m in ev.matched_categories)
        add(
            "category",
            f"you like: {names}",
            "interest love into like".split(),
            clause=f"you like {_listed(m.name for m in ev.matched_categories)}",
        )
    if ev.matched_tags:
        names = ", ".join(m.name for m in ev.matched_tags)
        add(
            "tag",
            f"you like the tags: {names}",
            "interest love into like".split(),
            clause=f"you like {_listed(m.name for m in ev.matched_tags)}",
        )
    popular = ev.popularity_rank <= POPULAR_RANK or any(s.name == "popularity" for s in ev.sources)
    rank_words = set(_POPULAR_WORDS) if popular else {"ranked", "rank", "number"}
    if ev.popularity_rank <= len(_ORDINALS):
        rank_words.add(_ORDINALS[ev.popularity_rank - 1])
    add(
        "popularity",
        f"popularity rank #{ev.popularity_rank} ({_shoppers(ev.interaction_count)})",
        rank_words | {"interacted", "shop"},
        clause=(
            f"it is popular, with {_shoppers(ev.interaction_count)}"
            if popular
            else f"{_shoppers(ev.interaction_count)} interacted with it"
        ),
    )
    if ev.segment is not None:
        seg = ev.segment
        add(
            "segment",
            f"{seg.shoppers} of {seg.size} shoppers like you ({seg.label}) chose it",
            "popular people others similar shopper".split(),
            clause=f"{seg.shoppers} of {seg.size} shoppers like you chose it",
        )
    if ev.nearby is not None:
        add(
            "nearby",
            f"offered {ev.nearby.distance_km:g} km from you",
            "near nearby close local kilometres kilometers away pick up pickup collect".split(),
            clause=f"it is offered {ev.nearby.distance_km:g} km from you",
        )
    add(
        "price",
        f"price ${product.price:.2f}",
        "priced cost costs pay dollars dollar".split(),
        clause=f"it costs ${product.price:.2f}",
    )
    if product.quantity > 0:
        add(
            "stock",
            "in stock",
            "available availability currently now".split(),
            clause="it is in stock",
        )
    else:
        add(
            "stock",
            "out of stock",
            "unavailable".split(),
            clause="it is out of stock",
            reason=False,
        )
    own = [t for t in product.tags if t != slug(product.category)]
    if own:
        add("own_tags", f"tags: {', '.join(own)}", clause=f"it is tagged {_listed(own)}")
    return facts


def build_facts(
    items: Sequence[FactItem],
    *,
    summary: str = "",
    past_times: Mapping[uuid.UUID, datetime] | None = None,
    now: datetime | None = None,
) -> FactSheet:
    """The facts of one answer. ``past_times`` (product → last interaction) and ``now`` date
    the past items ("3 days ago"); without them past facts carry no time."""
    past_days: dict[uuid.UUID, float] = {}
    if past_times and now is not None:
        past_days = {pid: (now - at).total_seconds() / 86_400 for pid, at in past_times.items()}
    ids = _Numberer("F")
    products = tuple(
        ProductFacts(
            ref=f"P{i + 1}",
            product=item.product,
            facts=tuple(product_facts(item, ids, past_days=past_days)),
        )
        for i, item in enumerate(items)
    )
    request_ids = _Numberer("U")
    request: list[Fact] = []
    if summary.strip():
        # What the shopper asked for or did, in the words a reply restates it with.
        words = {"you", "looking", "asked", "want", "wanted", "searching", "search", "request"}
        if "$" in summary:
            words |= {"budget", "price", "priced"}
        request.append(Fact(request_ids.next(), "request", summary.strip(), frozenset(words)))
    by_id = {f.id: f for p in products for f in p.facts} | {f.id: f for f in request}
    return FactSheet(products=products, request=tuple(request), by_id=by_id)
