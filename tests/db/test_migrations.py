"""Alembic is the only way the schema changes: up, down and up again on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from backend.db import models  # noqa: F401  (registers the tables)
from backend.db.engine import make_engine
from backend.db.migrate import current_revision, downgrade, upgrade


def test_upgrade_downgrade_upgrade(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    head = current_revision(engine)
    assert head is not None
    assert {"product", "app_user", "interaction"} <= set(sa.inspect(engine).get_table_names())
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert "product" not in sa.inspect(engine).get_table_names()
    upgrade(engine)
    assert current_revision(engine) == head
    engine.dispose()


def test_models_and_migrations_agree(database_url):
    """A table or column added to the models without a migration fails here."""
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert diff == []
