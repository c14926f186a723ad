"""0009 on existing data: event ids stored before become 'legacy', and going back down keeps
every event while making ids unique across senders again."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from backend.db.engine import make_engine
from backend.db.migrate import downgrade, upgrade

USER = uuid.uuid4()
PRODUCT = uuid.uuid4()


def _event(conn: sa.Connection, event_id: str | None, source: str | None = None,
           at: str = "2026-11-01 12:00:00") -> uuid.UUID:  # fmt: skip
    row = uuid.uuid4()
    columns = "id, user_id, product_id, action, event_id, created_at"
    values = ":id, :user, :product, 'view', :event_id, :at"
    if source is not None:
        columns, values = f"{columns}, event_source", f"{values}, :source"
    conn.execute(
        sa.text(f"INSERT INTO interaction ({columns}) VALUES ({values})"),
        {"id": row.hex if conn.dialect.name == "sqlite" else row,
         "user": USER.hex if conn.dialect.name == "sqlite" else USER,
         "product": PRODUCT.hex if conn.dialect.name == "sqlite" else PRODUCT,
         "event_id": event_id, "at": at, "source": source},
    )  # fmt: skip
    return row


def _ledger_and_outbox(conn: sa.Connection) -> tuple[int, int]:
    processed = conn.execute(sa.text("SELECT count(*) FROM processed_event")).scalar_one()
    pending = conn.execute(sa.text("SELECT count(*) FROM event_outbox")).scalar_one()
    return processed, pending


def test_event_ids_become_legacy_and_survive_down_and_up(database_url):
    engine = make_engine(database_url)
    try:
        _up_down_up(engine)
    finally:
        engine.dispose()


def _up_down_up(engine: sa.Engine) -> None:
    upgrade(engine, "0008")
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO app_user (id, username, email, password_hash, is_guest, created_at) "
                "VALUES (:id, 'u', 'u@example.com', 'x', :no, '2026-01-01 00:00:00')"
            ),
            {"id": USER.hex if sqlite else USER, "no": False},
        )
        conn.execute(
            sa.text(
                "INSERT INTO product (id, name, description, category, price, quantity, tags,"
                " views, created_at, updated_at) VALUES (:id, 'p', '', 'c', 1, 1, '[]', 0,"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ),
            {"id": PRODUCT.hex if sqlite else PRODUCT},
        )
        first = _event(conn, "e-1")
        second = _event(conn, None)
        # One event processed, one still waiting in the outbox: rebuilding ``interaction``
        # (SQLite's way to change a constraint) must not cascade into either table.
        for table, column, event in (("processed_event", "processed_at", first),
                                     ("event_outbox", "stored_at", second)):  # fmt: skip
            conn.execute(
                sa.text(f"INSERT INTO {table} (interaction_id, {column}) VALUES (:id, :at)"),
                {"id": event.hex if sqlite else event, "at": "2026-11-01 12:00:00"},
            )
    upgrade(engine)
    with engine.begin() as conn:
        assert _ledger_and_outbox(conn) == (1, 1)
        sources = conn.execute(
            sa.text("SELECT event_id, event_source FROM interaction ORDER BY event_id")
        ).all()
        assert sorted(sources, key=str) == sorted([("e-1", "legacy"), (None, None)], key=str)
        _event(conn, "e-1", "key:shop", at="2026-11-02 12:00:00")  # another sender's id
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _event(conn, "e-1", "key:shop")
    downgrade(engine, "0008")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_id FROM interaction")).scalars().all()
        assert _ledger_and_outbox(conn) == (1, 1)
    assert sorted(rows, key=str) == sorted(["e-1", None, None], key=str)  # all 3 events kept
    upgrade(engine)
