"""What the shop sells, in the words shoppers use: built from the catalog snapshot.

Categories, tags, colours and brands all come from the catalog itself, so a new category or
tag is understood without a code change; a small hand-written map adds everyday synonyms
("headphones" → Electronics). Brands are not a catalog field: they are the name prefixes that
several products share ("Hearth & Hollow …"). Built once per snapshot version.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from backend.recommender.snapshot import CatalogSnapshot, IntArray
from backend.text import COLOUR_ALIASES, COLOURS, singular, slug
from backend.text import words as text_words

__all__ = ["ChatVocabulary", "Kind", "Term", "VocabularyCache"]

Kind = Literal["category", "tag", "colour", "brand"]


# Everyday words for categories, when the category exists in the catalog. A word that is also
# a catalog tag additionally becomes a tag filter (``TAG_ALIASES`` may point it elsewhere).
CATEGORY_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(
        "headphones headphone earbuds earphones headset speaker speakers keyboard mouse webcam "
        "smartwatch gadget gadgets tech electronic e-reader ereader kindle".split(),
        "Electronics",
    ),
    **dict.fromkeys(
        "shoes shoe sneakers sneaker trainers jacket jackets coat shirt shirts t-shirt tshirt "
        "tee sweater sweaters jumper jeans leggings beanie hat clothes clothing apparel "
        "outfit footwear".split(),
        "Clothing",
    ),
    **dict.fromkeys(
        "charger cable wallet sunglasses backpack bag bags phone-case".split(), "Accessories"
    ),
    **dict.fromkeys(
        "makeup make-up skincare lipstick perfume fragrance serum shampoo cosmetics "
        "moisturizer sunscreen".split(),
        "Beauty",
    ),
    **dict.fromkeys("book novel novels reads paperback hardcover cookbook".split(), "Books"),
    **dict.fromkeys(
        "cookware pan pans skillet knife knives kettle cooking baking mixer coffee espresso "
        "grinder cutlery".split(),
        "Kitchen",
    ),
    **dict.fromkeys(
        "gardening plants plant planter planters hose seeds compost garden".split(), "Garden"
    ),
    **dict.fromkeys(
        "vitamins supplements protein toothbrush thermometer wellness".split(), "Health"
    ),
    **dict.fromkeys("furniture decor bedding candle candles towels blanket".split(), "Home"),
    **dict.fromkeys(
        "stationery pens pen notebook notebooks planner office chair desk-chair".split(), "Office"
    ),
    **dict.fromkeys("pet pets dog dogs puppy cat cats kitten leash litter".split(), "Pet Supplies"),
    **dict.fromkeys(
        "toy toys game games puzzle puzzles lego board-game boardgame plush".split(),
        "Toys & Games",
    ),
    **dict.fromkeys(
        "sport sports fitness gym workout yoga camping hiking tent dumbbells outdoor "
        "outdoors".split(),
        "Sports & Outdoors",
    ),
}
# Synonyms whose catalog tag has another spelling.
TAG_ALIASES = {
    "shoes": "footwear", "shoe": "footwear", "trainers": "footwear", "earphones": "earbuds",
    "headphone": "headphones", "boardgame": "board-game", "tshirt": "t-shirt",
    "tee": "t-shirt", "jumper": "sweater", "ereader": "e-reader", "kindle": "e-reader",
    "dogs": "dog", "cats": "cat", "puppy": "dog", "kitten": "cat",
}  # fmt: skip

# Synonyms that name a whole department: they select the category, never a tag as well.
GENERIC_WORDS = frozenset(
    "toy toys game games pet pets clothes clothing apparel outfit tech gadget gadgets "
    "electronic sport sports outdoor outdoors garden gardening wellness decor furniture "
    "stationery office book novel novels reads cosmetics fitness".split()
)

# Words that start product names but are not brands (book titles, articles).
_NOT_BRANDS = frozenset({"the", "a", "an", "my", "our", "your", "new", "classic", "mini", "pro"})
MAX_PHRASE = 3


@dataclass(frozen=True, slots=True)
class Term:
    kind: Kind
    value: str  # the catalog's spelling: category name, tag, colour tag, brand name
    # Extra filters a synonym implies ("shoes" → also the "footwear" tag).
    also_tag: str | None = None


@dataclass
class ChatVocabulary:
    """Phrase → term lookups plus brand postings, for one catalog snapshot."""

    version: str
    phrases: dict[str, Term]
    categories: list[str]
    tags: frozenset[str]
    colours: frozenset[str]
    brands: dict[str, str]  # lowercase → display name
    brand_postings: dict[str, IntArray] = field(default_factory=dict)

    @classmethod
    def build(cls, snapshot: CatalogSnapshot) -> ChatVocabulary:
        phrases: dict[str, Term] = {}
        category_slugs = {slug(c) for c in snapshot.category_names}
        colours = frozenset(t for t in snapshot.tag_names if t in COLOURS)
        tags = frozenset(
            t for t in snapshot.tag_names if t not in category_slugs and t not in colours
        )

        def add(phrase: str, term: Term, *, override: bool = False) -> None:
            # Keys are token sequences as the parser tokenises ("&" and "." are not tokens).
            words = text_words(phrase)
            variants = {
                " ".join(words),
                " ".join(w for word in words for w in word.split("-")),
                " ".join(words).replace(" ", " and ") if "&" in phrase else "",
            }
            for variant in variants:
                if variant and (override or variant not in phrases):
                    phrases[variant] = term

        for tag in sorted(tags):
            add(tag, Term("tag", tag))
        for colour in sorted(colours):
            add(colour, Term("colour", colour), override=True)
        for alias, colour in COLOUR_ALIASES.items():
            if colour in colours:
                add(alias, Term("colour", colour), override=True)
        for word, category in CATEGORY_SYNONYMS.items():
            if (
                category not in snapshot.category_index
                or word in phrases
                and (phrases[word].kind == "colour")
            ):
                continue
            tag = TAG_ALIASES.get(word, word)
            if tag not in tags:
                tag = singular(tag) or tag
            implied = tag if tag in tags and word not in GENERIC_WORDS else None
            add(word, Term("category", category, also_tag=implied), override=True)
        for name in snapshot.category_names:
            term = Term("category", name)
            add(name, term, override=True)
            add(slug(name), term, override=True)
            for part in re.split(r"\s*(?:&|and|,)\s*", name.lower()):
                if part and part not in phrases:
                    add(part, term)
                    if not part.endswith("s"):
                        add(part + "s", term)

        brands, postings = _brands(snapshot)
        for key, display in brands.items():
            add(key, Term("brand", display), override=True)
            short = key.split()[0]
            clash = short in phrases or short in _NOT_BRANDS
            if " " in key and not clash and sum(b.split()[0] == short for b in brands) == 1:
                add(short, Term("brand", display))
        return cls(
            version=snapshot.version,
            phrases=phrases,
            categories=list(snapshot.category_names),
            tags=tags,
            colours=colours,
            brands={display.lower(): display for display in brands.values()},
            brand_postings=postings,
        )

    def lookup(self, words: list[str]) -> Term | None:
        term = self.phrases.get(" ".join(words))
        if term is None:  # "board games" → "board game"
            base = singular(words[-1])
            if base is not None:
                term = self.phrases.get(" ".join([*words[:-1], base]))
        return term


def _brands(snapshot: CatalogSnapshot) -> tuple[dict[str, str], dict[str, IntArray]]:
    """Name prefixes shared by ≥ 2 products (the longest prefix as frequent as its first word)."""
    names = [(i, p.name.split()) for i, p in enumerate(snapshot.products)]
    counts: Counter[str] = Counter()
    for _, words in names:
        for k in range(1, MAX_PHRASE + 1):
            if len(words) > k:
                counts[" ".join(words[:k])] += 1
    members: dict[str, list[int]] = defaultdict(list)
    for i, words in names:
        if len(words) < 2 or words[0].lower() in _NOT_BRANDS or not words[0][:1].isupper():
            continue
        if counts[words[0]] < 2:
            continue
        best = words[0]
        for k in (2, 3):
            prefix = " ".join(words[:k])
            if len(words) > k and words[k - 1] != "&" and counts[prefix] == counts[words[0]]:
                best = prefix
        members[best].append(i)
    brands = {b.lower(): b for b in members}
    postings = {b: np.asarray(ids, dtype=np.int64) for b, ids in members.items()}
    return brands, postings


class VocabularyCache:
    """One vocabulary per snapshot version; rebuilt when the catalog changes."""

    def __init__(self) -> None:
        self._current: tuple[CatalogSnapshot, ChatVocabulary] | None = None
        self._lock = threading.Lock()

    def get(self, snapshot: CatalogSnapshot) -> ChatVocabulary:
        current = self._current
        if current is not None and current[0] is snapshot:
            return current[1]
        with self._lock:
            if self._current is None or self._current[0] is not snapshot:
                self._current = (snapshot, ChatVocabulary.build(snapshot))
            return self._current[1]
