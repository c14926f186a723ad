"""Why the chat picked a product, as ``Evidence``: each score part's share and what it matched.

The shopper's own words are never quoted back as a fact: a query part says which of their
words the product matches, or that it is close in meaning.
"""

from __future__ import annotations

from backend.chat.scoring import WEIGHTS
from backend.chat.state import ChatFilters
from backend.recommender.evidence import Evidence, PastInteraction, SourceShare, WeightedMatch
from backend.recommender.profile import UserProfile
from backend.recommender.snapshot import CatalogSnapshot
from backend.text import singular, terms


def chat_evidence(
    snapshot: CatalogSnapshot,
    f: ChatFilters,
    profile: UserProfile | None,
    i: int,
    parts: dict[str, float],
    total: float,
) -> Evidence:
    product = snapshot.products[i]
    own_tags = set(product.tags)
    contributions = {k: WEIGHTS[k] * v for k, v in parts.items() if v > 0}
    whole = sum(contributions.values()) or 1.0
    pop = float(snapshot.popularity[i])
    rank = int((snapshot.popularity > pop).sum()) + 1
    query_words = list(dict.fromkeys(terms(f.query, parts=False)))
    text = f"{product.name} {' '.join(product.tags)} {product.category} {product.description}"
    product_words = set(terms(text))
    matched_words = [w for w in query_words if w in product_words or singular(w) in product_words]
    details = {
        # Never the raw query: evidence may be quoted, and the shopper's words are not facts.
        "query": (
            "matches your words: " + ", ".join(matched_words)
            if matched_words
            else "close in meaning to what you described"
        ),
        "similar": f"similar to {f.similar_to.name}" if f.similar_to else "",
        "profile": "fits what you have liked and viewed",
        "tags": "has " + ", ".join(t for t in f.include_tags if t in own_tags),
        "popularity": f"#{rank} by shopper activity",
    }
    sources = [
        SourceShare(name=k, share=round(v / whole, 3), detail=details[k])
        for k, v in sorted(contributions.items(), key=lambda kv: -kv[1])
    ]
    categories = (
        [WeightedMatch(name=product.category, weight=1.0)]
        if (product.category in f.categories)
        else []
    )
    if profile is not None and product.category in profile.categories and not categories:
        categories = [
            WeightedMatch(
                name=product.category, weight=round(profile.categories[product.category], 3)
            )
        ]
    requested = [*f.include_tags, *f.colours, *(w for w in matched_words if w in own_tags)]
    tags = [WeightedMatch(name=t, weight=1.0) for t in dict.fromkeys(requested) if t in own_tags]
    if profile is not None:
        known = {t.name for t in tags}
        tags += [
            WeightedMatch(name=t, weight=round(w, 3))
            for t, w in profile.top_tags(10)
            if t in own_tags and t not in known
        ][:3]
    because: list[PastInteraction] = []
    if f.similar_to is not None and "similar" in contributions:
        because.append(
            PastInteraction(
                product_id=f.similar_to.product_id,
                product_name=f.similar_to.name,
                action="similar_to",
            )
        )
    return Evidence(
        strategy="chat",
        score=round(float(total), 4),
        sources=sources,
        matched_categories=categories,
        matched_tags=tags,
        because_of=because,
        popularity_rank=rank,
        interaction_count=int(pop),
    )
