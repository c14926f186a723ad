"""0011 on existing data: dropping ``product.views`` keeps every product and every row that
points at one (on SQLite a copied-and-renamed table would cascade-delete them), and going
back down re-adds the column, NOT NULL and 0, for the code of that revision."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from backend.db.engine import make_engine
from backend.db.migrate import downgrade, upgrade

USER = uuid.uuid4()
PRODUCT = uuid.uuid4()


def _columns(engine: sa.Engine) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns("product")}


def _counts(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [
            conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("product", "interaction", "cartitem")
        ]


def test_views_is_dropped_and_comes_back_with_every_row_kept(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        _up_down(engine)
    finally:
        engine.dispose()


def _up_down(engine: sa.Engine) -> None:
    upgrade(engine, "0010")
    sqlite = engine.dialect.name == "sqlite"
    user, product = (USER.hex, PRODUCT.hex) if sqlite else (USER, PRODUCT)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO app_user (id, username, email, password_hash, is_guest, created_at) "
                "VALUES (:id, 'u', 'u@example.com', 'x', :no, '2026-01-01 00:00:00')"
            ),
            {"id": user, "no": False},
        )
        conn.execute(
            sa.text(
                "INSERT INTO product (id, name, description, category, price, quantity, tags,"
                " views, created_at, updated_at) VALUES (:id, 'Desk Lamp', '', 'c', 1, 1, '[]',"
                " 7, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ),
            {"id": product},
        )
        conn.execute(
            sa.text(
                "INSERT INTO interaction (id, user_id, product_id, action, created_at)"
                " VALUES (:id, :user, :product, 'view', '2026-11-01 12:00:00')"
            ),
            {"id": uuid.uuid4().hex if sqlite else uuid.uuid4(), "user": user, "product": product},
        )
        conn.execute(
            sa.text(
                "INSERT INTO cartitem (user_id, product_id, quantity, added_at)"
                " VALUES (:user, :product, 2, '2026-11-01 12:00:00')"
            ),
            {"user": user, "product": product},
        )

    upgrade(engine, "0011")
    assert "views" not in _columns(engine)
    assert _counts(engine) == [1, 1, 1]  # the product, its event and its cart line all stay
    with engine.connect() as conn:
        name = conn.execute(
            sa.text("SELECT name FROM product WHERE id = :id"), {"id": product}
        ).scalar_one()
    assert name == "Desk Lamp"

    downgrade(engine, "0010")
    column = next(c for c in sa.inspect(engine).get_columns("product") if c["name"] == "views")
    assert column["nullable"] is False
    assert _counts(engine) == [1, 1, 1]
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT views FROM product")).scalar_one() == 0
        # The code of 0010 writes the column; a row it adds without it still gets 0.
        conn.execute(
            sa.text(
                "INSERT INTO product (id, name, description, category, price, quantity, tags,"
                " created_at, updated_at) VALUES (:id, 'Mug', '', 'c', 1, 1, '[]',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ),
            {"id": uuid.uuid4().hex if sqlite else uuid.uuid4()},
        )
        assert conn.execute(sa.text("SELECT sum(views) FROM product")).scalar_one() == 0
    upgrade(engine)
    assert "views" not in _columns(engine)
