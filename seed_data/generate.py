"""Generate Shopwise demo data: products, users and interactions as JSON.

Run from the repository root:

    python seed_data/generate.py

It reads the catalogue from ``catalog.json`` and the shopper personas and names from
``shoppers.json``, both beside this script (``seed_model``), makes products
(``seed_products``), users (here) and their interactions (``seed_interactions``), checks them
and writes them. Standard library only and fully deterministic:
a fixed random seed, a fixed reference time (instead of ``now()``) and ``uuid5`` ids, so two
runs write byte-identical files.
"""

import json
import re
from collections import Counter, defaultdict
from datetime import datetime
from random import Random
from typing import Any

from seed_interactions import Shop, build_interactions
from seed_model import (
    ACTIONS,
    FIRST_NAMES,
    INTERACTIONS_PER_USER,
    LAST_NAMES,
    MIN_CATEGORIES,
    MIN_INTERACTIONS,
    MIN_PRODUCTS,
    MIN_USERS,
    NEWCOMER,
    NEWCOMERS,
    OUT_DIR,
    PERSONAS,
    REFERENCE_TIME,
    SEED,
    USERS_PER_PERSONA,
    WINDOW_START,
    WORKED_EXAMPLES,
    Interaction,
    Persona,
    Product,
    User,
    days_ago,
    iso,
    make_id,
    slugify,
)
from seed_products import build_products

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
