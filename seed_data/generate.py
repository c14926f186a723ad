"""Generate Shopwise demo data: products, users and interactions as JSON.

Run from the repository root:

    python seed_data/generate.py

It reads the catalogue from ``catalog.json`` and the shopper personas and names from
``shoppers.json``, both beside this script. Standard library only and fully deterministic:
a fixed random seed, a fixed reference time (instead of ``now()``) and ``uuid5`` ids, so two
runs write byte-identical files.
"""

import json
import math
import re
import unicodedata
import uuid
from collections import Counter, defaultdict
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


# --------------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------------


# Price multiplier by a brand's position in its category's list: premium to value brands.
BRAND_TIERS = (1.25, 1.0, 0.88, 1.1, 0.8, 1.15)


def choose_features(kind_: ProductType, room: int, rng: Random) -> list[Feature]:
    """Pick one exclusive option (if any) plus up to two optional features, within `room` tags."""
    picked: list[Feature] = []
    if kind_.exclusive:
        picked.append(rng.choice(kind_.exclusive))
    optional = [f for f in kind_.features if f.tag not in kind_.tags]
    wanted = rng.choice((1, 1, 2)) if not picked else rng.choice((0, 1))
    wanted = min(wanted, len(optional), room - len(picked))
    picked.extend(rng.sample(optional, wanted))
    return picked


def build_name(
    category: Category,
    kind_: ProductType,
    brand: str,
    variant: str,
    colour: str | None,
    title: str | None,
) -> str:
    if title is not None:
        return f"{title} {kind_.noun}".strip()
    name = " ".join(part for part in (brand, kind_.noun, variant) if part)
    if category.colour_in_name and colour:
        name = f"{name} - {colour.title()}"
    return name


def build_description(
    kind_: ProductType,
    brand: str,
    colour: str | None,
    features: Sequence[Feature],
    title: str | None,
) -> str:
    if title is not None:  # books and games: "<blurb> by <author>, in a hardcover edition."
        extra = f", {join_phrases([f.phrase for f in features])}" if features else ""
        return f"{kind_.blurb} {kind_.by} {brand}{extra}. {kind_.use}"
    # Optional features first, the exclusive choice (flavour, scent...) last, reads best.
    ordered = [f for f in features if f not in kind_.exclusive]
    ordered += [f for f in features if f in kind_.exclusive]
    lead = kind_.blurb
    if ordered:
        joiner = ", plus " if " with " in lead else " with "
        lead += joiner + join_phrases([f.phrase for f in ordered])
    colour_note = f" Colour: {COLOURS[colour]}." if colour else ""
    return f"{lead}.{colour_note} {kind_.use}"


def build_tags(
    category: Category, kind_: ProductType, colour: str | None, features: Sequence[Feature]
) -> list[str]:
    tags = [slugify(category.name), *kind_.tags]
    if colour:
        tags.append(colour)
    tags.extend(f.tag for f in features)
    return list(dict.fromkeys(tags))  # de-duplicate, keep order


def make_product(
    category: Category, kind_: ProductType, taken: set[str], rng: Random, title: str | None = None
) -> Product:
    for _ in range(200):
        brand = rng.choice(category.brands)
        variant, variant_mult = rng.choice(kind_.variants)
        colour = rng.choice(kind_.colours) if kind_.colours else None
        name = build_name(category, kind_, brand, variant, colour, title)
        if name not in taken:
            break
    else:
        raise RuntimeError(f"could not find a unique name for {kind_.noun!r}")
    base_tags = 1 + len(kind_.tags) + (1 if colour else 0)
    features = choose_features(kind_, 8 - base_tags, rng)
    multiplier = variant_mult * math.prod(f.multiplier for f in features)
    multiplier *= BRAND_TIERS[category.brands.index(brand) % len(BRAND_TIERS)]
    taken.add(name)
    return Product(
        id=make_id("product", name),
        name=name,
        description=build_description(kind_, brand, colour, features, title),
        category=category.name,
        price=product_price(kind_, multiplier, rng),
        quantity=0,  # set later by assign_stock
        tags=build_tags(category, kind_, colour, features),
        created_at=product_created_at(rng),
    )


def product_price(kind_: ProductType, multiplier: float, rng: Random) -> str:
    """Typical price for the type, scaled by brand tier, variant and features, with noise.

    Titled items (books, games) have narrow ranges and are priced uniformly within them.
    """
    low, high = kind_.price
    if kind_.titles:
        raw = rng.uniform(low, high) * multiplier
    else:
        raw = math.sqrt(low * high) * multiplier * rng.uniform(0.88, 1.12)
    return charm_price(min(max(raw, low * 0.7), high * 1.3), rng)


def product_created_at(rng: Random) -> datetime:
    """Most of the catalogue is older than the interaction window; ~12% are new arrivals."""
    if rng.random() < 0.12:
        return days_ago(rng, 7, 100)
    return days_ago(rng, 125, 720)


def category_products(category: Category, taken: set[str], rng: Random) -> list[Product]:
    """Round-robin over the category's product types until the category target is reached."""
    titles = [rng.sample(k.titles, len(k.titles)) for k in category.types]
    products: list[Product] = []
    index = 0
    while len(products) < category.target:
        if index > category.target * 10:
            raise RuntimeError(f"not enough titles in {category.name}")
        position = index % len(category.types)
        kind_ = category.types[position]
        index += 1
        if not kind_.titles:
            products.append(make_product(category, kind_, taken, rng))
        elif titles[position]:
            products.append(make_product(category, kind_, taken, rng, titles[position].pop()))
    return products


def worked_example_products() -> list[Product]:
    return [Product(id=make_id("product", spec["name"]), **spec) for spec in WORKED_EXAMPLES]


def assign_stock(products: list[Product], rng: Random) -> None:
    """~5% out of stock (never the worked examples), the rest a long-tailed stock level."""
    protected = {spec["name"] for spec in WORKED_EXAMPLES}
    candidates = [p for p in products if p.name not in protected]
    sold_out = {p.id for p in rng.sample(candidates, round(len(products) * OUT_OF_STOCK_SHARE))}
    for product in candidates:
        if product.id in sold_out:
            product.quantity = 0
        else:
            product.quantity = min(500, max(1, int(rng.lognormvariate(3.6, 0.9))))


def assign_popularity(products: list[Product], rng: Random) -> None:
    """Zipf-like latent popularity over a random ranking, so demand is strongly skewed."""
    ranking = list(products)
    rng.shuffle(ranking)
    for rank, product in enumerate(ranking, start=1):
        product.popularity = 1.0 / rank**0.85
    top = ranking[0].popularity
    for product in products:  # worked examples are reliably visible in the demo data
        if product.name in {spec["name"] for spec in WORKED_EXAMPLES}:
            product.popularity = max(product.popularity, top * 0.25)


def build_products(rng: Random) -> list[Product]:
    taken = {spec["name"] for spec in WORKED_EXAMPLES}
    products = worked_example_products()
    for category in CATALOGUE:
        products.extend(category_products(category, taken, rng))
    assign_stock(products, rng)
    assign_popularity(products, rng)
    return products


# --------------------------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------------------------


def build_users(rng: Random) -> list[User]:
    pairs = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(pairs)
    roster = [p for p in PERSONAS for _ in range(USERS_PER_PERSONA)]
    rng.shuffle(roster)
    roster.extend([NEWCOMER] * NEWCOMERS)
    users: list[User] = []
    usernames: set[str] = set()
    for (first, last), who in zip(pairs, roster, strict=False):
        username = unique_username(f"{slugify(first, '_')}_{slugify(last, '_')}", usernames)
        users.append(
            User(
                id=make_id("user", username),
                username=username,
                email=f"{username}@example.com",
                full_name=f"{first} {last}",
                persona=who,
                created_at=user_created_at(who, rng),
            )
        )
    return users


def unique_username(base: str, taken: set[str]) -> str:
    candidate, suffix = base, 2
    while candidate in taken:
        candidate, suffix = f"{base}{suffix}", suffix + 1
    taken.add(candidate)
    return candidate


def user_created_at(who: Persona, rng: Random) -> datetime:
    if who is NEWCOMER:
        return days_ago(rng, 0.2, 3)
    if rng.random() < 0.2:  # joined during the interaction window
        return days_ago(rng, 25, 100)
    return days_ago(rng, 130, 900)


# --------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------


class Shop:
    """Catalogue indexes and per-persona affinity weights used while simulating users."""

    def __init__(self, products: list[Product]) -> None:
        self.products = products
        self.price_rank = self._price_percentiles(products)
        self.weights: dict[str, list[float]] = {
            p.key: [self.persona_weight(p, product) for product in products] for p in PERSONAS
        }

    @staticmethod
    def _price_percentiles(products: list[Product]) -> dict[str, float]:
        by_category: dict[str, list[Product]] = defaultdict(list)
        for product in products:
            by_category[product.category].append(product)
        ranks: dict[str, float] = {}
        for members in by_category.values():
            members.sort(key=lambda p: (p.price_value, p.name))
            for index, product in enumerate(members):
                ranks[product.id] = index / max(1, len(members) - 1)
        return ranks

    def affinity(self, who: Persona, product: Product) -> float:
        tag_hits = len(who.tags.intersection(product.tags))
        return who.categories.get(product.category, 0.0) + 0.8 * tag_hits

    def price_fit(self, who: Persona, product: Product) -> float:
        pct = self.price_rank[product.id]
        if who.price_level == "budget":
            return 1.6 - 1.2 * pct
        if who.price_level == "premium":
            return 0.4 + 1.2 * pct
        return 1.3 - 1.2 * abs(pct - 0.5)

    def persona_weight(self, who: Persona, product: Product) -> float:
        affinity = self.affinity(who, product)
        if affinity <= 0:
            return 0.0
        return affinity * self.price_fit(who, product) * product.popularity

    def matching(self, needed: Sequence[str]) -> list[Product]:
        return [p for p in self.products if all(tag in p.tags for tag in needed)]


def available(product: Product, at: datetime) -> bool:
    return product.created_at + timedelta(hours=1) <= at


def weighted_pick(
    rng: Random, pool: Sequence[Product], weights: Sequence[float], at: datetime
) -> Product | None:
    options = [(p, w) for p, w in zip(pool, weights, strict=True) if w > 0 and available(p, at)]
    if not options:
        return None
    return rng.choices([p for p, _ in options], weights=[w for _, w in options])[0]


def pick_browse_product(shop: Shop, who: Persona, at: datetime, rng: Random) -> Product:
    """~80% on-persona (affinity x price fit x popularity), ~20% popularity-driven exploration."""
    if rng.random() >= EXPLORATION_SHARE:
        chosen = weighted_pick(rng, shop.products, shop.weights[who.key], at)
        if chosen is not None:
            return chosen
    chosen = weighted_pick(rng, shop.products, [p.popularity for p in shop.products], at)
    if chosen is None:
        raise RuntimeError(f"no product available at {iso(at)}")
    return chosen


PRICE_CAPS = (10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 250, 300, 400, 500)


def make_search(shop: Shop, who: Persona, rng: Random) -> tuple[str, list[Product]]:
    """Build a query from the persona's interests and the products that would answer it."""
    text, needed = rng.choice(who.searches)
    pool = shop.matching(needed)
    roll = rng.random()
    under_share = 0.35 if who.price_level == "budget" else 0.15
    if roll < under_share:
        prices = sorted(p.price_value for p in pool)
        cap = next(c for c in PRICE_CAPS if c >= prices[len(prices) // 3])
        return f"{text} under {cap}", [p for p in pool if p.price_value <= cap]
    if roll < under_share + 0.15:
        colours = sorted({t for p in pool for t in p.tags if t in COLOURS})
        if colours:
            colour = rng.choice(colours)
            return f"{colour} {text}", [p for p in pool if colour in p.tags]
    if roll < under_share + 0.27:
        prefix = {"budget": "cheap", "mid": "best", "premium": "premium"}[who.price_level]
        return f"{prefix} {text}", pool
    return text, pool


def step(moment: datetime, rng: Random, low: int = 8, high: int = 240) -> datetime:
    return moment + timedelta(seconds=rng.randint(low, high))


def product_funnel(
    product: Product, start: datetime, engaged: bool, rng: Random, end: datetime
) -> tuple[list[Event], datetime]:
    """view -> (click) -> (wishlist) -> (add_to_cart) -> (purchase), each step less likely.

    Returns the events and the moment the shopper moves on within the session.
    """
    events = [Event(start, "view", product)]
    moment = start
    if rng.random() >= (0.55 if engaged else 0.30):
        return events, moment
    moment = step(moment, rng)
    events.append(Event(moment, "click", product))
    if rng.random() < 0.15:
        moment = step(moment, rng)
        events.append(Event(moment, "wishlist", product))
    if product.quantity == 0 or rng.random() >= 0.38:
        return events, moment
    moment = step(moment, rng)
    events.append(Event(moment, "add_to_cart", product))
    if rng.random() < 0.55:
        if rng.random() < 0.7:  # checks out in the same session
            paid_at = step(moment, rng, 30, 900)
        else:  # comes back to the cart hours or days later
            paid_at = step(moment, rng, 2 * 3600, 4 * 86400)
        if paid_at <= end:
            events.append(Event(paid_at, "purchase", product))
    return events, moment


HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 4, 5, 5, 5, 6, 8, 8, 6, 5, 5, 6, 8, 10, 11, 10, 7, 3)


def session_start(rng: Random, start: datetime, end: datetime) -> datetime:
    """A random day in the range, at an hour shaped like real shop traffic (evening peak)."""
    moment = random_moment(rng, start, end)
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    shaped = moment.replace(hour=hour, minute=rng.randint(0, 59), second=rng.randint(0, 59))
    return shaped if start <= shaped <= end else moment


def run_session(
    shop: Shop, who: Persona, start: datetime, seen: list[Product], rng: Random, end: datetime
) -> list[Event]:
    events: list[Event] = []
    moment = start
    pool: list[Product] = []
    if who.searches and rng.random() < SEARCH_SESSION_SHARE:
        query, pool = make_search(shop, who, rng)
        events.append(Event(moment, "search", None, query))
        moment = step(moment, rng, 3, 30)
    for _ in range(rng.randint(1, 5)):
        product, engaged = choose_session_product(shop, who, moment, pool, seen, rng)
        chain, moment = product_funnel(product, moment, engaged, rng, end)
        events.extend(chain)
        seen.append(product)
        moment = step(moment, rng, 20, 600)
        if moment > end:
            break
    return events


def choose_session_product(
    shop: Shop, who: Persona, at: datetime, pool: list[Product], seen: list[Product], rng: Random
) -> tuple[Product, bool]:
    """Search results first, then sometimes a revisit, otherwise normal browsing."""
    if pool and rng.random() < 0.8:
        hit = weighted_pick(rng, pool, [shop.price_fit(who, p) * p.popularity for p in pool], at)
        if hit is not None:
            return hit, True
    if seen and rng.random() < REVISIT_SHARE:
        return rng.choice(seen), True
    product = pick_browse_product(shop, who, at, rng)
    return product, shop.affinity(who, product) > 0


def user_events(shop: Shop, user: User, rng: Random) -> list[Event]:
    """Sessions spread over the window until the user's interaction budget is used up."""
    budget = rng.randint(*INTERACTIONS_PER_USER)
    start = max(WINDOW_START, user.created_at + timedelta(hours=1))
    last_start = REFERENCE_TIME - timedelta(hours=3)  # a session lasts well under 3 hours
    end = REFERENCE_TIME - timedelta(minutes=1)
    sessions = max(3, math.ceil(budget / 5))
    starts = sorted(session_start(rng, start, last_start) for _ in range(sessions))
    events: list[Event] = []
    seen: list[Product] = []
    while len(events) < budget:
        at = starts.pop(0) if starts else session_start(rng, start, last_start)
        events.extend(run_session(shop, user.persona, at, seen, rng, end))
    return events[:budget]  # generation order: a prefix never orphans a purchase


def build_interactions(shop: Shop, users: list[User], rng: Random) -> list[Interaction]:
    interactions: list[Interaction] = []
    for user_index, user in enumerate(users):
        if user.persona is NEWCOMER:
            continue  # cold-start demo users: no history at all
        for event_index, event in enumerate(user_events(shop, user, rng)):
            interactions.append(
                Interaction(
                    id=make_id("interaction", f"{user.username}:{event_index}"),
                    user_id=user.id,
                    product_id=event.product.id if event.product else None,
                    action=event.action,
                    query=event.query,
                    created_at=event.at,
                    order=(user_index, event_index),
                )
            )
    interactions.sort(key=lambda i: (i.created_at, i.order))
    return interactions


# --------------------------------------------------------------------------------------------
# Validation, output, summary
# --------------------------------------------------------------------------------------------


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"seed data check failed: {message}")


def validate_products(products: list[Product]) -> None:
    check(len(products) >= MIN_PRODUCTS, f"only {len(products)} products")
    check(len({p.category for p in products}) >= MIN_CATEGORIES, "too few categories")
    check(len({p.name for p in products}) == len(products), "duplicate product names")
    check(len({p.id for p in products}) == len(products), "duplicate product ids")
    for p in products:
        check(3 <= len(p.tags) <= 8, f"{p.name}: {len(p.tags)} tags")
        check(len(set(p.tags)) == len(p.tags), f"{p.name}: repeated tag")
        check(all(t == t.lower() for t in p.tags), f"{p.name}: tag not lowercase")
        check(p.tags[0] == slugify(p.category), f"{p.name}: first tag is not the category")
        check(re.fullmatch(r"\d+\.\d{2}", p.price) is not None, f"{p.name}: price {p.price}")
        check(p.quantity >= 0, f"{p.name}: negative stock")
    for spec in WORKED_EXAMPLES:
        match = [p for p in products if p.name == spec["name"]]
        check(len(match) == 1 and match[0].tags == spec["tags"], f"worked example {spec}")
    known_tags = {t for p in products for t in p.tags}
    for who in PERSONAS:
        check(who.tags <= known_tags, f"{who.key}: unknown tags {who.tags - known_tags}")
        for text, needed in who.searches:
            check(any(all(t in p.tags for t in needed) for p in products), f"query {text!r}")


def validate_users(users: list[User]) -> None:
    check(len(users) >= MIN_USERS, f"only {len(users)} users")
    for attr in ("id", "username", "email"):
        values = [getattr(u, attr) for u in users]
        check(len(set(values)) == len(values), f"duplicate user {attr}")
    for u in users:
        check(re.fullmatch(r"[a-z0-9_]+", u.username) is not None, f"username {u.username}")


def validate_interactions(
    interactions: list[Interaction], products: list[Product], users: list[User]
) -> None:
    check(len(interactions) >= MIN_INTERACTIONS, f"only {len(interactions)} interactions")
    by_id = {p.id: p for p in products}
    user_by_id = {u.id: u for u in users}
    stamps = [i.created_at for i in interactions]
    check(stamps == sorted(stamps), "interactions not sorted by time")
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    for i in interactions:
        check(i.action in ACTIONS, f"unknown action {i.action}")
        check(WINDOW_START <= i.created_at < REFERENCE_TIME, f"{i.id} outside window")
        check(i.created_at > user_by_id[i.user_id].created_at, f"{i.id} before signup")
        if i.action == "search":
            check(i.product_id is None and bool(i.query), f"{i.id}: bad search")
            continue
        check(i.query is None and i.product_id in by_id, f"{i.id}: bad product event")
        product = by_id[str(i.product_id)]
        check(i.created_at > product.created_at, f"{i.id} before product existed")
        history = seen[(i.user_id, product.id)]
        if i.action == "purchase":
            check({"view", "add_to_cart"} <= history, f"{i.id}: purchase without view+cart")
        history.add(i.action)
    per_user = Counter(i.user_id for i in interactions)
    for u in users:
        count = per_user.get(u.id, 0)
        if u.persona is NEWCOMER:
            check(count == 0, f"newcomer {u.username} has interactions")
        else:
            low, high = INTERACTIONS_PER_USER
            check(low <= count <= high, f"{u.username} has {count} interactions")
    actions = Counter(i.action for i in interactions)
    check(
        actions["view"] > actions["click"] > actions["add_to_cart"] > actions["purchase"],
        f"funnel not decreasing: {dict(actions)}",
    )
    check(actions["wishlist"] < actions["click"], "more wishlists than clicks")


def write_json(name: str, records: list[dict[str, Any]]) -> None:
    with (OUT_DIR / name).open("w", encoding="utf-8", newline="\n") as handle:
        json.dump(records, handle, indent=1, ensure_ascii=False)
        handle.write("\n")


def summary(
    products: list[Product], users: list[User], interactions: list[Interaction]
) -> list[str]:
    categories = Counter(p.category for p in products)
    actions = Counter(i.action for i in interactions)
    demand = Counter(i.product_id for i in interactions if i.product_id)
    top_n = max(1, len(products) // 10)
    top_share = sum(c for _, c in demand.most_common(top_n)) / max(1, sum(demand.values()))
    newcomers = sum(1 for u in users if u.persona is NEWCOMER)
    return [
        f"products:     {len(products)} "
        f"({sum(1 for p in products if p.quantity == 0)} out of stock)",
        f"categories:   {len(categories)} "
        + ", ".join(f"{name} {count}" for name, count in sorted(categories.items())),
        f"users:        {len(users)} ({newcomers} newcomers with no interactions)",
        f"personas:     {len(PERSONAS)} + newcomer",
        f"interactions: {len(interactions)} " + ", ".join(f"{a} {actions[a]}" for a in ACTIONS),
        f"products with interactions: {len(demand)}; "
        f"top 10% of products get {top_share:.0%} of product events",
        f"window:       {iso(WINDOW_START)} .. {iso(REFERENCE_TIME)}",
    ]


def main() -> None:
    rng = Random(SEED)
    products = build_products(rng)
    users = build_users(rng)
    interactions = build_interactions(Shop(products), users, rng)
    validate_products(products)
    validate_users(users)
    validate_interactions(interactions, products, users)
    write_json("products.json", [p.to_json() for p in products])
    write_json("users.json", [u.to_json() for u in users])
    write_json("interactions.json", [i.to_json() for i in interactions])
    for line in summary(products, users, interactions):
        print(line)  # noqa: T201


if __name__ == "__main__":
    main()
