"""Interactions: each shopper's sessions of browsing, searching and buying, following their
persona, over the interaction window."""

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from random import Random

from seed_model import (
    COLOURS,
    EXPLORATION_SHARE,
    INTERACTIONS_PER_USER,
    NEWCOMER,
    PERSONAS,
    REFERENCE_TIME,
    REVISIT_SHARE,
    SEARCH_SESSION_SHARE,
    WINDOW_START,
    Event,
    Interaction,
    Persona,
    Product,
    User,
    iso,
    make_id,
    random_moment,
)

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
