"""A synthetic shop for the experiment tests: shoppers with a known favourite category."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import session_scope
from backend.db.models import Interaction, Product, User
from backend.wiring import Components, build_components
from tests.factories import NOW, make_product

CATEGORIES = ("Audio", "Kitchen", "Garden", "Books")
PER_CATEGORY = 10


@dataclass
class Shoppers:
    favourite: dict[uuid.UUID, str]  # user id → the category they like
    category: dict[uuid.UUID, str]  # product id → its category


def build_synthetic_shop(engine, n_users: int, seed: int = 7) -> Shoppers:
    rng = random.Random(seed)
    products: list[Product] = [
        make_product(f"{c} item {i}", c, [c.lower()], f"{10 + i}.00")
        for c in CATEGORIES
        for i in range(PER_CATEGORY)
    ]
    users, events, favourite = [], [], {}
    for i in range(n_users):
        user = User(
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"sim-shopper:{i}"),
            username=f"shopper{i}",
            email=f"shopper{i}@example.com",
        )
        users.append(user)
        liked = CATEGORIES[i % len(CATEGORIES)]
        favourite[user.id] = liked
        seen = rng.sample([p for p in products if p.category == liked], 3)
        events += [
            Interaction(user_id=user.id, product_id=p.id, action="view",
                        created_at=NOW - timedelta(days=2, minutes=k))
            for k, p in enumerate(seen)
        ]  # fmt: skip
    with session_scope(engine) as session:
        session.add_all(products)
        session.add_all(users)
        session.flush()
        session.add_all(events)
    return Shoppers(favourite=favourite, category={p.id: p.category for p in products})


@pytest.fixture
def sim_components(tmp_path: Path, migrated_sqlite_url: str) -> Iterator[Components]:
    """Real components on SQLite, no background threads (the test flushes the log itself)."""
    url = migrated_sqlite_url
    settings = load_settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=url,
        snapshot_refresh_seconds=0,
        prompts_dir=PROJECT_ROOT / "prompts",
        cf_auto_train=False,
    )
    built = build_components(settings)
    yield built
    built.db.dispose()


# --- the API over the tiny shop of tests.factories (as in tests/api) ------------------------


@pytest.fixture
def shop(db):
    from tests.factories import build_shop

    return build_shop(db)


@pytest.fixture
def api(shop, components):
    from fastapi.testclient import TestClient

    from backend.main import create_app

    with TestClient(create_app(components=components)) as client:
        yield client
