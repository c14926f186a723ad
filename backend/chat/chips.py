"""What the shopper sees besides the products: the understood filters as removable chips,
and the next messages worth one tap."""

from __future__ import annotations

from collections.abc import Sequence

from backend.chat.ranking import Retrieved
from backend.chat.schemas import ChatProduct, FilterChip
from backend.chat.state import ChatFilters
from backend.recommender.snapshot import CatalogSnapshot

MAX_SUGGESTIONS = 5


def _money(value: float) -> str:
    return f"${value:,.0f}" if value == int(value) else f"${value:,.2f}"


def describe(filters: ChatFilters) -> list[FilterChip]:
    """The filters as removable chips, in the order a shopper reads them."""
    f = filters
    chips = [FilterChip(field="categories", value=c, label=c) for c in f.categories]
    chips += [
        FilterChip(field="exclude_categories", value=c, label=f"not {c}")
        for c in f.exclude_categories
    ]
    if f.min_price is not None and f.max_price is not None:
        chips.append(
            FilterChip(field="price", label=f"{_money(f.min_price)}–{_money(f.max_price)}")
        )
    elif f.max_price is not None:
        chips.append(FilterChip(field="max_price", label=f"under {_money(f.max_price)}"))
    elif f.min_price is not None:
        chips.append(FilterChip(field="min_price", label=f"over {_money(f.min_price)}"))
    chips += [FilterChip(field="colours", value=c, label=c) for c in f.colours]
    chips += [FilterChip(field="include_tags", value=t, label=t) for t in f.include_tags]
    chips += [FilterChip(field="brands", value=b, label=b) for b in f.brands]
    chips += [
        FilterChip(field="exclude_colours", value=c, label=f"not {c}") for c in f.exclude_colours
    ]
    chips += [FilterChip(field="exclude_tags", value=t, label=f"no {t}") for t in f.exclude_tags]
    chips += [
        FilterChip(field="exclude_brands", value=b, label=f"no {b}") for b in f.exclude_brands
    ]
    if f.in_stock:
        chips.append(FilterChip(field="in_stock", label="in stock"))
    if f.similar_to is not None:
        chips.append(FilterChip(field="similar_to", label=f"like {f.similar_to.name}"))
    if f.query:
        chips.append(FilterChip(field="query", label=f"“{f.query}”"))
    if f.sort != "relevance":
        label = "cheapest first" if f.sort == "price_asc" else "priciest first"
        chips.append(FilterChip(field="sort", label=label))
    return chips


def suggestions(
    filters: ChatFilters,
    products: Sequence[ChatProduct],
    retrieved: Retrieved,
    snapshot: CatalogSnapshot,
    *,
    has_more: bool = False,
) -> list[str]:
    """Next messages worth one tap; each is plain text the parser understands."""
    out: list[str] = []
    if has_more:
        out.append("Show me more")
    if products:
        out.append("Cheaper")
        out.append("More like the first one")
    if products and not filters.in_stock and any(not p.in_stock for p in products):
        out.append("Only in stock")
    seen = {*filters.include_tags, *filters.colours, *filters.exclude_tags}
    tag_counts: dict[str, int] = {}
    category_slugs = {c.lower().replace(" & ", "-") for c in snapshot.category_names}
    for p in products:
        for tag in p.tags[1:]:
            if tag not in seen and tag not in category_slugs:
                tag_counts[tag] = tag_counts.get(tag, 0) + 1
    common = sorted(tag_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if common and 1 < common[0][1] < len(products):
        out.append(f"Only {common[0][0]}")
    if not products:  # offer to loosen what most likely emptied the list
        if filters.colours:
            out.append("Any colour")
        if filters.min_price is not None or filters.max_price is not None:
            out.append("Any price")
        if filters.brands:
            out.append("Any brand")
    if not filters.is_empty:
        out.append("Start over")
    return [s for s in dict.fromkeys(out) if s][:MAX_SUGGESTIONS]
