"""Tiny catalogs with known answers for the strategy tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot, ProductRecord

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def product(name: str, category: str, tags: list[str], price: str = "10.00", qty: int = 5):
    return ProductRecord(
        id=uuid.uuid5(uuid.NAMESPACE_URL, name),
        name=name,
        category=category,
        price=Decimal(price),
        quantity=qty,
        tags=tuple(tags),
    )


def event(p: ProductRecord, action: str = "view", days_ago: float = 1.0) -> InteractionRecord:
    return InteractionRecord(
        action=action, product_id=p.id, created_at=NOW - timedelta(days=days_ago)
    )


# The worked example of the spec: a profile of Electronics/Accessories and audio tags.
HEADPHONES = product("Studio Headphones", "Electronics", ["audio", "wireless", "bluetooth"])
SPEAKER = product("Pocket Speaker", "Electronics", ["audio", "portable", "bluetooth"])
CASE = product("Phone Case", "Accessories", ["portable", "wireless"])
CHARGER = product("Travel Charger", "Accessories", ["portable"])
EARBUDS = product(
    "Wireless Earbuds", "Electronics", ["electronics", "audio", "earbuds", "wireless"]
)
DESK_LAMP = product("Desk Lamp", "Home", ["home", "lighting", "desk", "led"])
SKILLET = product("Cast Iron Skillet", "Kitchen", ["kitchen", "cookware"])
KETTLE = product("Electric Kettle", "Kitchen", ["kitchen", "electric"])

CATALOG = [HEADPHONES, SPEAKER, CASE, CHARGER, EARBUDS, DESK_LAMP, SKILLET, KETTLE]
POPULARITY = {DESK_LAMP.id: 50, SKILLET.id: 40, KETTLE.id: 30, EARBUDS.id: 5}


@pytest.fixture
def snapshot() -> CatalogSnapshot:
    return CatalogSnapshot.build(CATALOG, POPULARITY, version="tiny")


@pytest.fixture
def audio_history() -> list[InteractionRecord]:
    """Top categories {Electronics, Accessories}; top tags audio/wireless/bluetooth/portable."""
    return [event(HEADPHONES, "purchase"), event(SPEAKER), event(CASE), event(CHARGER)]
