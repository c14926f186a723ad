"""Tiny, known data in a real database: the spec's worked example and a few shoppers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.engine import Engine

from backend.db.engine import session_scope
from backend.db.models import Interaction, Product, User

NOW = datetime.now(UTC)


def make_product(name: str, category: str, tags: list[str], price: str, qty: int = 5) -> Product:
    return Product(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"product:{name}"),
        name=name,
        description=f"The {name.lower()}.",
        category=category,
        price=Decimal(price),
        quantity=qty,
        tags=tags,
        image_url=None,
    )


def make_user(username: str, full_name: str | None = None) -> User:
    return User(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"user:{username}"),
        username=username,
        email=f"{username}@example.com",
        full_name=full_name,
        password_hash="scrypt$not-a-real-hash",
    )


def make_event(user: User, product: Product | None, action: str, days_ago: float = 1.0,
               query: str | None = None) -> Interaction:  # fmt: skip
    return Interaction(
        user_id=user.id,
        product_id=product.id if product else None,
        action=action,
        query=query,
        created_at=NOW - timedelta(days=days_ago),
    )


@dataclass
class Shop:
    products: dict[str, Product]
    users: dict[str, User]


def build_shop(engine: Engine) -> Shop:
    p = {
        x.name: x
        for x in [
            make_product("Studio Headphones", "Electronics",
                         ["audio", "wireless", "bluetooth"], "89.00"),
            make_product("Pocket Speaker", "Electronics",
                         ["audio", "portable", "bluetooth"], "39.50"),
            make_product("Phone Case", "Accessories", ["portable", "wireless"], "15.00"),
            make_product("Travel Charger", "Accessories", ["portable"], "24.99"),
            make_product("Wireless Earbuds", "Electronics",
                         ["electronics", "audio", "earbuds", "wireless"], "59.99"),
            make_product("Desk Lamp", "Home", ["home", "lighting", "desk", "led"], "34.00"),
            make_product("Cast Iron Skillet", "Kitchen", ["kitchen", "cookware"], "45.00"),
            make_product("Electric Kettle", "Kitchen", ["kitchen", "electric"], "29.00", qty=0),
        ]
    }  # fmt: skip
    u = {
        x.username: x
        for x in [
            make_user("alice", "Alice Lee"),
            make_user("bob"),
            make_user("carol", "Carol Diaz"),
            make_user("dave", "Dave Kim"),
        ]
    }
    events = [
        make_event(u["alice"], p["Studio Headphones"], "purchase", 3),
        make_event(u["alice"], p["Pocket Speaker"], "view", 2),
        make_event(u["alice"], p["Phone Case"], "view", 2),
        make_event(u["alice"], p["Travel Charger"], "view", 1),
        make_event(u["alice"], None, "search", 1, query="wireless earbuds"),
        *[make_event(u["carol"], product, "view", 5) for product in p.values()],
        *[make_event(u["dave"], p["Desk Lamp"], "view", d) for d in (1, 2, 3, 4)],
        *[make_event(u["dave"], p["Cast Iron Skillet"], "view", d) for d in (1, 2, 3)],
        *[make_event(u["dave"], p["Electric Kettle"], "click", d) for d in (1, 2)],
    ]
    with session_scope(engine) as session:
        session.add_all(list(p.values()))
        session.add_all(list(u.values()))
        session.flush()
        session.add_all(events)
    return Shop(products=p, users=u)
