"""The demo data's knobs, its catalogue and personas as read from catalog.json and
shoppers.json, the records it writes, and small deterministic helpers."""

import json
import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any, NamedTuple

SEED = 20261101
REFERENCE_TIME = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
WINDOW_DAYS = 120
WINDOW_START = REFERENCE_TIME - timedelta(days=WINDOW_DAYS)
NAMESPACE = uuid.UUID("5b0f3c2e-9d7a-4e61-8a3b-2f4c6d8e1a90")
HERE = Path(__file__).resolve().parent
OUT_DIR = HERE

MIN_PRODUCTS = 320
MIN_CATEGORIES = 12
MIN_USERS = 60
MIN_INTERACTIONS = 2500
USERS_PER_PERSONA = 5
NEWCOMERS = 3
INTERACTIONS_PER_USER = (15, 80)
OUT_OF_STOCK_SHARE = 0.05
EXPLORATION_SHARE = 0.20
SEARCH_SESSION_SHARE = 0.35
REVISIT_SHARE = 0.15

ACTIONS = ("view", "click", "add_to_cart", "wishlist", "purchase", "search")


# --------------------------------------------------------------------------------------------
# Catalogue (its content: catalog.json)
# --------------------------------------------------------------------------------------------


class Feature(NamedTuple):
    """An optional product attribute: its tag, a description phrase and a price multiplier."""

    tag: str
    phrase: str
    multiplier: float = 1.0


@dataclass(frozen=True)
class ProductType:
    """A kind of product from which several concrete products are generated."""

    noun: str
    tags: tuple[str, ...]
    price: tuple[float, float]
    blurb: str
    use: str
    features: tuple[Feature, ...] = ()
    exclusive: tuple[Feature, ...] = ()  # exactly one is picked (format, flavour, scent...)
    variants: tuple[tuple[str, float], ...] = (("", 1.0),)
    colours: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()  # titled items (books, games) are named by title
    by: str = "by"


@dataclass(frozen=True)
class Category:
    name: str
    brands: tuple[str, ...]
    target: int
    types: tuple[ProductType, ...]
    colour_in_name: bool = False


def product_type(data: Mapping[str, Any]) -> ProductType:
    """A product type from its entry in catalog.json (seed_data/README.md lists the fields)."""
    return ProductType(
        noun=data["noun"],
        tags=tuple(data["tags"]),
        price=(data["price"][0], data["price"][1]),
        blurb=data["blurb"],
        use=data["use"],
        features=tuple(Feature(*f) for f in data.get("features", ())),
        exclusive=tuple(Feature(*f) for f in data.get("exclusive", ())),
        variants=tuple(
            (name, multiplier) for name, multiplier in data.get("variants", [("", 1.0)])
        ),
        colours=tuple(data.get("colours", ())),
        titles=tuple(data.get("titles", ())),
        by=data.get("by", "by"),
    )


def category(data: Mapping[str, Any]) -> Category:
    return Category(
        name=data["name"],
        brands=tuple(data["brands"]),
        target=data["target"],
        types=tuple(product_type(t) for t in data["types"]),
        colour_in_name=data.get("colour_in_name", False),
    )


def worked_example(data: Mapping[str, Any]) -> dict[str, Any]:
    return {**data, "created_at": datetime.fromisoformat(data["created_at"])}


# Read when the script starts: the catalogue is data, edited in catalog.json, not here.
_CATALOG = json.loads((HERE / "catalog.json").read_text(encoding="utf-8"))
COLOURS: dict[str, str] = _CATALOG["colours"]
CATALOGUE: tuple[Category, ...] = tuple(category(c) for c in _CATALOG["categories"])
# The two products used by the documented worked example; they must exist exactly like this.
WORKED_EXAMPLES: tuple[dict[str, Any], ...] = tuple(
    worked_example(e) for e in _CATALOG["worked_examples"]
)


# --------------------------------------------------------------------------------------------
# Personas and names (their content: shoppers.json)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    """A shopper archetype: favourite categories (weights), favourite tags, price level.

    ``searches`` pairs a query text with the tags a product needs to match it.
    """

    key: str
    categories: Mapping[str, float]
    tags: frozenset[str]
    price_level: str  # "budget" | "mid" | "premium"
    searches: tuple[tuple[str, tuple[str, ...]], ...]


def persona(
    key: str,
    categories: Mapping[str, float],
    tags: Sequence[str],
    price_level: str,
    searches: Sequence[tuple[str, Sequence[str]]],
) -> Persona:
    return Persona(
        key,
        dict(categories),
        frozenset(tags),
        price_level,
        tuple((text, tuple(needed)) for text, needed in searches),
    )


_SHOPPERS = json.loads((HERE / "shoppers.json").read_text(encoding="utf-8"))
PERSONAS: tuple[Persona, ...] = tuple(
    persona(p["key"], p["categories"], p["tags"], p["price_level"], p["searches"])
    for p in _SHOPPERS["personas"]
)
NEWCOMER = persona("newcomer", {}, (), "mid", ())

FIRST_NAMES: tuple[str, ...] = tuple(_SHOPPERS["first_names"])
LAST_NAMES: tuple[str, ...] = tuple(_SHOPPERS["last_names"])

# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class Product:
    id: str
    name: str
    description: str
    category: str
    price: str
    quantity: int
    tags: list[str]
    created_at: datetime
    popularity: float = 1.0  # internal only: drives the skewed demand, never written

    @property
    def price_value(self) -> float:
        return float(self.price)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "price": self.price,
            "quantity": self.quantity,
            "tags": self.tags,
            "created_at": iso(self.created_at),
        }


@dataclass
class User:
    id: str
    username: str
    email: str
    full_name: str
    persona: Persona
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "full_name": self.full_name,
            "persona": self.persona.key,
            "created_at": iso(self.created_at),
        }


@dataclass
class Event:
    at: datetime
    action: str
    product: Product | None = None
    query: str | None = None


@dataclass
class Interaction:
    id: str
    user_id: str
    product_id: str | None
    action: str
    query: str | None
    created_at: datetime
    order: tuple[int, int] = field(default=(0, 0))  # (user index, event index) tie-breaker

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "product_id": self.product_id,
            "action": self.action,
            "query": self.query,
            "created_at": iso(self.created_at),
        }


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_id(kind_: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind_}:{key}"))


def slugify(text: str, sep: str = "-") -> str:
    """ASCII slug: 'Sports & Outdoors' -> 'sports-outdoors', 'Núñez' -> 'nunez'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = ascii_text.replace("'", "")
    return re.sub(r"[^a-z0-9]+", sep, ascii_text.lower()).strip(sep)


def charm_price(raw: float, rng: Random) -> str:
    """Round a raw price to a shop-like ending such as 29.99 or 34.95."""
    whole = max(4, int(raw))
    cents = rng.choice((99, 99, 99, 99, 95, 49, 0))
    if cents == 0:
        whole += 1
    return f"{whole}.{cents:02d}"


def random_moment(rng: Random, start: datetime, end: datetime) -> datetime:
    span = max(0, int((end - start).total_seconds()))
    return start + timedelta(seconds=rng.randint(0, span))


def days_ago(rng: Random, low: float, high: float) -> datetime:
    moment = REFERENCE_TIME - timedelta(days=rng.uniform(low, high))
    return moment.replace(microsecond=0)


def join_phrases(phrases: Sequence[str]) -> str:
    """'a', 'b' -> 'a and b'; avoids 'x and y and z' when a phrase already has an 'and'."""
    if len(phrases) <= 1:
        return "".join(phrases)
    joiner = ", as well as " if any(" and " in p for p in phrases) else " and "
    return ", ".join(phrases[:-1]) + joiner + phrases[-1]
