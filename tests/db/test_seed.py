"""The demo data loads on both databases, meets the catalog's promises, and loads once."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, func, select

from backend.config import PROJECT_ROOT
from backend.db.models import Interaction, Product, User
from backend.db.seed import load_seed

SEED = PROJECT_ROOT / "seed_data"


def test_seed_loads_once_and_is_realistic(db):
    first = load_seed(db, SEED)
    assert first.products >= 300 and first.users >= 50 and first.interactions >= 2000
    again = load_seed(db, SEED)
    assert (again.products, again.users, again.interactions) == (0, 0, 0)
    assert again.skipped_existing == first.products + first.users + first.interactions
    with Session(db) as s:
        assert s.exec(select(func.count()).select_from(Product)).one() == first.products
        products = s.exec(select(Product)).all()
        assert len({p.category for p in products}) >= 10
        assert all(3 <= len(p.tags) <= 8 for p in products)
        assert all(p.price > 0 and p.description for p in products)
        assert len({p.name for p in products}) == len(products)
        users = s.exec(select(User)).all()
        per_user = Counter(s.exec(select(Interaction.user_id)).all())
        assert sum(1 for u in users if per_user[u.id] >= 15) >= 50
        actions = Counter(s.exec(select(Interaction.action)).all())
        assert actions["view"] > actions["click"] > actions["purchase"] > 0
        assert actions["search"] > 0
