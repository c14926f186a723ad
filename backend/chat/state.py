"""The conversation state: what the assistant has understood so far, kept between turns.

Every turn produces a ``FilterUpdate`` (from the rule parser or a validated LLM answer) and
``ChatState.apply`` folds it into a new state. The update is the *only* way a message can
change anything, and it can only name fields declared here: that is the guarantee that odd
or hostile input never reaches beyond the allowed filters.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.chat.vocabulary import Kind
from backend.recommender.snapshot import CatalogSnapshot

Sort = Literal["relevance", "price_asc", "price_desc"]
# Filter fields a shopper can remove one at a time (the UI's chips, ``remove_filter``).
FilterField = Literal[
    "categories",
    "exclude_categories",
    "price",
    "min_price",
    "max_price",
    "include_tags",
    "exclude_tags",
    "colours",
    "exclude_colours",
    "brands",
    "exclude_brands",
    "in_stock",
    "query",
    "similar_to",
    "sort",
]

MAX_LIST = 12  # no filter list grows without bound, whatever a message says
MAX_QUERY_WORDS = 12
MAX_REMEMBERED = 50  # shown / liked / disliked ids kept per conversation
MAX_SEEN = 300  # ids shown since the filters last changed (what "show more" skips)


@dataclass(frozen=True, slots=True)
class ValueFilter:
    """One kind of catalog value a shopper can ask for or rule out, and its two fields."""

    kind: Kind
    wanted: str  # the values asked for (for categories, the update sets or adds them)
    excluded: str  # the values ruled out
    noun: str  # how a note to the shopper names one ("This shop has no colour …")


CATEGORY_FILTER = ValueFilter("category", "categories", "exclude_categories", "category")
# The attribute filters: an update adds to them, exactly as the state holds them.
ATTRIBUTE_FILTERS = (
    ValueFilter("tag", "include_tags", "exclude_tags", "attribute"),
    ValueFilter("colour", "colours", "exclude_colours", "colour"),
    ValueFilter("brand", "brands", "exclude_brands", "brand"),
)
VALUE_FILTERS = (CATEGORY_FILTER, *ATTRIBUTE_FILTERS)
FILTER_OF_KIND = {f.kind: f for f in VALUE_FILTERS}


class ValueLists(BaseModel):
    """The catalog-value lists every filter shape shares: the state holds them, an update adds
    them, the LLM's schema asks for them. (Wanted categories differ: an update may replace them.)"""

    exclude_categories: list[str] = Field(default_factory=list)
    include_tags: list[str] = Field(default_factory=list)
    exclude_tags: list[str] = Field(default_factory=list)
    colours: list[str] = Field(default_factory=list)
    exclude_colours: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    exclude_brands: list[str] = Field(default_factory=list)


class PriceRange(BaseModel):
    min_price: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)


class SimilarTo(BaseModel):
    product_id: uuid.UUID
    name: str


class ChatFilters(ValueLists, PriceRange):
    """The structured request, shown back to the shopper after every turn."""

    model_config = ConfigDict(extra="forbid")

    categories: list[str] = Field(default_factory=list)
    in_stock: bool = False
    query: str = ""
    similar_to: SimilarTo | None = None
    sort: Sort = "relevance"

    @property
    def is_empty(self) -> bool:
        return self == ChatFilters()


class FilterChanges(ValueLists, PriceRange):
    """What one message may change, in the words both parsers share. Positions
    (``similar_to_position``, ``cheaper_than_position``) are 1-based references to the products
    shown last turn; ``None`` leaves stock and sort as they are."""

    reset: bool = False
    cheaper: bool = False
    pricier: bool = False
    cheaper_than_position: int | None = Field(default=None, ge=1)
    similar_to_position: int | None = Field(default=None, ge=1)
    in_stock: bool | None = None
    sort: Sort | None = None
    # "show me more", "next", "other options": the next results not shown yet (paging).
    more: bool = False


class FilterUpdate(FilterChanges):
    """One message's worth of changes. Both parsers produce exactly this.

    Lists add to the state (``set_categories`` replaces the wanted categories).
    """

    model_config = ConfigDict(extra="forbid")

    set_categories: list[str] | None = None
    add_categories: list[str] = Field(default_factory=list)
    clear: list[FilterField] = Field(default_factory=list)
    query_words: list[str] = Field(default_factory=list)
    # What the parser wants the shopper to know (dropped values, truncation, refusals).
    notes: list[str] = Field(default_factory=list)

    @property
    def changes_nothing(self) -> bool:
        return self.model_copy(update={"notes": []}) == FilterUpdate()


class GuestEvent(BaseModel):
    """Feedback given inside the conversation (the guest profile is built from these)."""

    product_id: uuid.UUID
    action: Literal["view", "click", "add_to_cart", "wishlist"]


class ChatState(BaseModel):
    session_id: uuid.UUID  # always made by the server
    # Who started it (``Principal.identity``); nobody else may read or continue it.
    owner: str | None = None
    user_id: uuid.UUID | None = None
    filters: ChatFilters = Field(default_factory=ChatFilters)
    shown: list[uuid.UUID] = Field(default_factory=list)  # the cards on screen, in order
    seen: list[uuid.UUID] = Field(default_factory=list)  # every page since the filters changed
    liked: list[uuid.UUID] = Field(default_factory=list)
    disliked: list[uuid.UUID] = Field(default_factory=list)
    events: list[GuestEvent] = Field(default_factory=list)
    turns: int = 0
    page: int = 1

    def remember(
        self,
        *,
        liked: uuid.UUID | None = None,
        disliked: uuid.UUID | None = None,
        event: GuestEvent | None = None,
    ) -> ChatState:
        """Record feedback; liking and disliking the same product are mutually exclusive."""
        state = self.model_copy(deep=True)
        if liked is not None:
            state.disliked = [p for p in state.disliked if p != liked]
            state.liked = _bounded_add(state.liked, liked)
        if disliked is not None:
            state.liked = [p for p in state.liked if p != disliked]
            state.disliked = _bounded_add(state.disliked, disliked)
        if event is not None:
            state.events = [*state.events, event][-MAX_REMEMBERED:]
        return state


def _bounded_add(ids: list[uuid.UUID], new: uuid.UUID) -> list[uuid.UUID]:
    return [*(p for p in ids if p != new), new][-MAX_REMEMBERED:]


def merge(existing: Sequence[str], added: Sequence[str], removed: Sequence[str] = ()) -> list[str]:
    """Ordered union without duplicates, minus ``removed``, capped at ``MAX_LIST``."""
    gone = set(removed)
    return [x for x in dict.fromkeys([*existing, *added]) if x not in gone][:MAX_LIST]


PRICE_STEP = 0.8  # "cheaper": at most 80 % of the dearest product shown


def apply_update(
    state: ChatState, update: FilterUpdate, snapshot: CatalogSnapshot
) -> tuple[ChatState, list[str]]:
    """Fold one message's update into a new state; returns it with notes for the shopper."""
    notes: list[str] = []
    new = state.model_copy(deep=True)
    if update.reset:
        new.filters = ChatFilters()
        new.shown, new.seen = [], []
    f = new.filters
    for name in update.clear:
        _clear(f, name)

    shown = [snapshot.index[p] for p in new.shown if p in snapshot.index]
    if update.set_categories is not None:
        topic_changed = not set(update.set_categories) & set(f.categories)
        f.categories = merge([], update.set_categories)
        # Price, stock and "not …" wishes usually carry over to the next topic; the rest not.
        if topic_changed:
            # A new topic: the old topic's attributes and words would only get in the way.
            f.include_tags, f.colours, f.brands = [], [], []
            f.query, f.similar_to = "", None
    f.categories = merge(f.categories, update.add_categories, update.exclude_categories)
    f.exclude_categories = merge(f.exclude_categories, update.exclude_categories, f.categories)

    if update.min_price is not None or update.max_price is not None:
        f.min_price, f.max_price = update.min_price, update.max_price
        f.sort = "relevance" if update.sort is None else f.sort
    if update.cheaper:
        prices = [float(snapshot.prices[i]) for i in shown]
        base = max(prices) if prices else f.max_price
        if base is None:
            f.sort = "price_asc"
        else:
            f.max_price = round(base * PRICE_STEP, 2)
    if update.pricier:
        prices = [float(snapshot.prices[i]) for i in shown]
        base = min(prices) if prices else f.min_price
        if base is None:
            f.sort = "price_desc"
        else:
            f.min_price = round(base / PRICE_STEP, 2)
    if update.cheaper_than_position is not None:
        i = _shown_index(new, update.cheaper_than_position, snapshot)
        if i is not None:
            f.max_price = round(float(snapshot.prices[i]) - 0.01, 2)
    if update.cheaper or update.cheaper_than_position is not None:
        if f.min_price is not None and f.max_price is not None and f.min_price >= f.max_price:
            f.min_price = None
    if update.pricier and f.max_price is not None and f.min_price is not None:
        if f.max_price <= f.min_price:
            f.max_price = None
    if update.similar_to_position is not None:
        i = _shown_index(new, update.similar_to_position, snapshot)
        if i is not None:
            product = snapshot.products[i]
            f.similar_to = SimilarTo(product_id=product.id, name=product.name)

    for kind in ATTRIBUTE_FILTERS:
        wanted = merge(
            getattr(f, kind.wanted), getattr(update, kind.wanted), getattr(update, kind.excluded)
        )
        setattr(f, kind.wanted, wanted)
        setattr(
            f,
            kind.excluded,
            merge(getattr(f, kind.excluded), getattr(update, kind.excluded), wanted),
        )
    if update.in_stock is not None:
        f.in_stock = update.in_stock
    if update.sort is not None:
        f.sort = update.sort
    if update.query_words:
        words = f.query.split() if f.query else []
        f.query = " ".join(merge(words, update.query_words)[-MAX_QUERY_WORDS:])
    return new, notes


def remove_filter(filters: ChatFilters, name: FilterField, value: str | None) -> ChatFilters:
    """Drop one chip: a whole field, or one value of a list field."""
    new = filters.model_copy(deep=True)
    current = getattr(new, name, None) if name not in ("price",) else None
    if value is not None and isinstance(current, list):
        setattr(new, name, [v for v in current if v.lower() != value.lower()])
    elif name == "query" and value is not None:
        new.query = " ".join(w for w in new.query.split() if w != value.lower())
    else:
        _clear(new, name)
    return new


def _clear(filters: ChatFilters, name: FilterField) -> None:
    defaults = ChatFilters()
    if name == "price":
        filters.min_price = filters.max_price = None
        return
    setattr(filters, name, getattr(defaults, name))


def _shown_index(state: ChatState, position: int, snapshot: CatalogSnapshot) -> int | None:
    if not 1 <= position <= len(state.shown):
        return None
    return snapshot.index.get(state.shown[position - 1])
