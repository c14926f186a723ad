"""``basket_names``: the cart's and the wishlist's product names, newest first, in one query
(SQLite and PostgreSQL), the same as the two whole-product queries it replaces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from backend.db import crud
from backend.db.models import CartItem, WishlistItem
from tests.factories import build_shop

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_names_newest_first_per_list_and_only_the_users_own(db):
    shop = build_shop(db)
    bob, dave = shop.users["bob"].id, shop.users["dave"].id
    p = shop.products
    with Session(db) as session:
        session.add(CartItem(user_id=bob, product_id=p["Desk Lamp"].id, added_at=T0))
        session.add(
            CartItem(user_id=bob, product_id=p["Phone Case"].id, added_at=T0 + timedelta(1))
        )
        session.add(
            WishlistItem(
                user_id=bob, product_id=p["Electric Kettle"].id, added_at=T0 - timedelta(1)
            )
        )
        session.add(WishlistItem(user_id=bob, product_id=p["Desk Lamp"].id, added_at=T0))
        session.add(CartItem(user_id=dave, product_id=p["Electric Kettle"].id, added_at=T0))
        session.commit()
    with Session(db) as session:
        cart, wishlist = crud.basket_names(session=session, user_id=bob)
        assert cart == ["Phone Case", "Desk Lamp"]
        assert wishlist == ["Desk Lamp", "Electric Kettle"]
        assert cart == [q.name for q, _ in crud.cart(session=session, user_id=bob)]
        assert wishlist == [q.name for q in crud.wishlist(session=session, user_id=bob)]
        assert crud.basket_names(session=session, user_id=dave) == (["Electric Kettle"], [])
        assert crud.basket_names(session=session, user_id=shop.users["carol"].id) == ([], [])
