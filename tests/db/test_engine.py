"""The engine's own guarantees: bounded waits and no connection left open after dispose."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlalchemy as sa

from backend.db.engine import make_engine


def is_closed(raw: Any) -> bool:
    closed = getattr(raw, "closed", None)  # psycopg
    if closed is not None:
        return bool(closed)
    try:  # sqlite3 has no flag: a closed connection refuses work
        raw.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_a_connection_returned_after_dispose_is_closed_not_leaked(database_url: str) -> None:
    """What a background thread does when the app shuts down under it: it still holds a
    connection while the engine is disposed, and gives it back afterwards."""
    engine = make_engine(database_url)
    kept = engine.connect()  # still pooled and open when returned normally
    kept_raw = kept.connection.dbapi_connection
    kept.close()
    assert not is_closed(kept_raw)

    straggler = engine.connect()
    raw = straggler.connection.dbapi_connection
    straggler.execute(sa.text("SELECT 1"))
    engine.dispose()
    assert not is_closed(raw)  # in use: dispose cannot close it
    straggler.close()  # the thread finishes
    assert is_closed(raw)  # closed at once, not left for the garbage collector

    with engine.connect() as fresh:  # the engine works on after a dispose
        assert fresh.execute(sa.text("SELECT 1")).scalar_one() == 1
    engine.dispose()


@pytest.mark.postgres
def test_postgres_statements_are_bounded_by_the_timeout(postgres_url: str) -> None:
    engine = make_engine(postgres_url, timeout_seconds=0.2)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "200ms"
            with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                conn.execute(sa.text("SELECT pg_sleep(5)"))
    finally:
        engine.dispose()
    unbounded = make_engine(postgres_url)  # CLI and migrations: no timeout
    try:
        with unbounded.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        unbounded.dispose()


@pytest.mark.postgres
def test_only_the_serving_components_bound_their_statements(postgres_url: str, tmp_path) -> None:
    from backend.config import load_settings
    from backend.db.migrate import upgrade
    from backend.wiring import build_components

    settings = load_settings(_env_file=None, data_dir=tmp_path, database_url=postgres_url)
    migrating = make_engine(postgres_url)
    upgrade(migrating)
    migrating.dispose()
    for serving, expected in ((True, "10s"), (False, "0")):
        components = build_components(settings, serving=serving)  # API / worker and CLI
        try:
            with components.db.connect() as conn:
                assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == expected
        finally:
            components.db.dispose()
