"""Engine and session construction: the one place that knows how to open the database."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext, make_url
from sqlmodel import Session, create_engine

from backend.observability.dependencies import DependencyMonitor


def make_engine(
    database_url: str, *, echo: bool = False, timeout_seconds: float | None = None
) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a folder for its file.

    ``timeout_seconds`` bounds every wait on the database (the API passes its request
    deadline): PostgreSQL's statement_timeout, connect timeout and pool checkout, SQLite's
    busy timeout. Without it, statements may run as long as they need (CLI, migrations).
    Pooled PostgreSQL connections are pinged on checkout, so a dropped connection is
    replaced instead of failing the request that draws it.
    """
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        busy = timeout_seconds if timeout_seconds is not None else 30
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy}
        if url.database and url.database != ":memory:":
            # Keep a connection per concurrent request: with the default 5, every request
            # past the fifth opened a connection (and ran the pragmas) and closed it again,
            # 1.5% of the storefront profile's samples on the recommend path.
            kwargs.update(pool_size=20, max_overflow=20)
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        if timeout_seconds is not None and url.get_backend_name() == "postgresql":
            options = f"-c statement_timeout={max(1, round(timeout_seconds * 1000))}"
            if extra := url.query.get("options"):
                options = f"{extra} {options}"
            kwargs["pool_timeout"] = timeout_seconds
            # libpq takes whole seconds and treats anything under 2 as 2.
            kwargs["connect_args"] = {
                "connect_timeout": max(2, math.ceil(timeout_seconds)),
                "options": options,
            }
    engine = create_engine(database_url, **kwargs)
    _close_stragglers(engine)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        _queue_sqlite_writers(engine, wait_seconds=kwargs["connect_args"]["timeout"])
    return engine


def _close_stragglers(engine: Engine) -> None:
    """Close a connection that comes back after ``engine.dispose()``.

    ``dispose()`` closes the idle connections only; one a background thread (worker, snapshot
    refresh, training) held at that moment is later returned to the discarded pool and left
    open until the garbage collector finds it (psycopg's "deleted while still open" warning,
    and a server connection held meanwhile). Each connection remembers the pool generation
    it was opened in; one checked in after a dispose is closed on the spot.
    """
    generation = [0]

    def disposed(_engine: Engine) -> None:
        generation[0] += 1

    def opened(_dbapi_connection: Any, record: Any) -> None:
        record.info["pool_generation"] = generation[0]

    def returned(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None and record.info.get("pool_generation") != generation[0]:
            dbapi_connection.close()

    event.listen(engine, "engine_disposed", disposed)
    event.listen(engine, "connect", opened)
    event.listen(engine, "checkin", returned)


def watch_engine(engine: Engine, monitor: DependencyMonitor) -> None:
    """Report the database's connection failures and timeouts (not bad SQL) to ``monitor``.

    Fires for failed statements, failed connects and failed pre-pings alike, so a dropped
    connection the pool replaced still shows in /health and /metrics.
    """

    def on_error(context: ExceptionContext) -> None:
        error = context.original_exception
        dbapi = engine.dialect.dbapi
        operational = dbapi is not None and isinstance(error, dbapi.OperationalError)
        if context.is_disconnect or operational:
            what = "connection dropped, reconnected" if context.is_pre_ping else None
            monitor.failure("database", what or error)

    event.listen(engine, "handle_error", on_error)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def _queue_sqlite_writers(engine: Engine, *, wait_seconds: float) -> None:
    """Writers of this process take turns on a lock instead of in SQLite's busy handler.

    SQLite has one writer at a time. A second writer waits in the busy handler, which polls
    with sleeps growing to 100 ms: under a burst of events most writers sleep long after
    the lock is free, and unfairly (measured: event p99 in seconds at 16 concurrent
    requests). Here a transaction takes the lock at its first write statement and gives it
    back at commit or rollback (or when its connection returns to the pool), so the next
    writer starts the moment the last one ends. The busy handler still arbitrates between
    processes (the CLI, a second server); a thread that waits ``wait_seconds`` goes on
    without its turn and lets SQLite decide, as before.
    """
    turn = threading.Lock()
    holders: set[int] = set()  # the DBAPI connections (by id) holding the turn

    def before(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        raw = id(cursor.connection)
        if raw in holders or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        if turn.acquire(timeout=wait_seconds):
            holders.add(raw)

    def release(conn: Any) -> None:
        raw = getattr(conn, "dbapi_connection", conn)  # the dialect gets the pool's proxy
        if id(raw) in holders:
            holders.discard(id(raw))
            turn.release()

    def after(_conn: Any, cursor: Any, *_args: Any) -> None:
        if not cursor.connection.in_transaction:
            release(cursor.connection)  # an autocommit write: nothing left to wait for

    # After the commit itself (the "commit" event fires before it), and after every
    # rollback, including the pool's reset of a returned connection.
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(conn: Any) -> None:
        try:
            commit(conn)
        finally:
            release(conn)

    def do_rollback(conn: Any) -> None:
        try:
            rollback(conn)
        finally:
            release(conn)

    setattr(dialect, "do_commit", do_commit)  # noqa: B010  (this engine's dialect only)
    setattr(dialect, "do_rollback", do_rollback)  # noqa: B010
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "checkin", lambda raw, _record: release(raw))
    event.listen(engine, "close", lambda raw, _record: release(raw))


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: no write half-done."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
