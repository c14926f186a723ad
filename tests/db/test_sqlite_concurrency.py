"""The embedded default (SQLite) serves reads while a write is under way.

WAL lets readers go on while a writer holds its transaction, ``synchronous=NORMAL`` makes a
commit one append instead of two syncs, and the busy timeout makes writers queue for each
other instead of failing with "database is locked".
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from backend.db.engine import make_engine


def test_a_fresh_sqlite_engine_runs_in_wal_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}", timeout_seconds=2.5)
    try:
        with engine.connect() as conn:

            def pragma(name: str) -> object:
                return conn.execute(sa.text(f"PRAGMA {name}")).scalar_one()

            assert pragma("journal_mode") == "wal"
            assert pragma("synchronous") == 1  # NORMAL
            assert pragma("busy_timeout") == 2500
            assert pragma("foreign_keys") == 1
    finally:
        engine.dispose()
    unbounded = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")  # CLI: waits as long as needed
    try:
        with unbounded.connect() as conn:
            assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar_one() == 30_000
    finally:
        unbounded.dispose()


def test_readers_are_never_locked_out_by_writers(tmp_path: Path) -> None:
    """Two writers hold transactions open while four readers poll with a short busy timeout:
    no reader or writer fails, and every committed row is seen."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    writer_engine = make_engine(url, timeout_seconds=10)
    # Readers barely wait: in WAL they never need to.
    reader_engine = make_engine(url, timeout_seconds=0.05)
    with writer_engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE item (id INTEGER PRIMARY KEY, writer INT, body TEXT)"))
    rows_per_writer, writers, readers = 60, 2, 4
    errors: list[BaseException] = []
    done = threading.Event()
    seen: list[int] = []

    def write(n: int) -> None:
        try:
            for i in range(rows_per_writer):
                with writer_engine.begin() as conn:
                    conn.execute(
                        sa.text("INSERT INTO item (writer, body) VALUES (:w, :b)"),
                        {"w": n, "b": f"row {i}" * 20},
                    )
                    time.sleep(0.002)  # the transaction stays open while readers read
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        last = 0
        try:
            while not done.is_set():
                with reader_engine.connect() as conn:
                    count = conn.execute(sa.text("SELECT count(*) FROM item")).scalar_one()
                    conn.execute(sa.text("SELECT writer, max(id) FROM item GROUP BY writer")).all()
                assert count >= last  # committed rows never disappear
                last = count
            seen.append(last)
        except BaseException as exc:
            errors.append(exc)

    write_threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    read_threads = [threading.Thread(target=read) for _ in range(readers)]
    for t in read_threads + write_threads:
        t.start()
    for t in write_threads:
        t.join(timeout=60)
    done.set()
    for t in read_threads:
        t.join(timeout=10)
    try:
        assert not errors, [repr(e) for e in errors[:3]]
        with reader_engine.connect() as conn:
            total = conn.execute(sa.text("SELECT count(*) FROM item")).scalar_one()
        assert total == writers * rows_per_writer
        assert len(seen) == readers
    finally:
        writer_engine.dispose()
        reader_engine.dispose()


def _write_in_thread(conn: sa.engine.Connection, value: str) -> threading.Thread:
    def write() -> None:
        with conn.begin():
            conn.execute(sa.text("INSERT INTO note (body) VALUES (:b)"), {"b": value})

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "ending", ["commit", "rollback", "error", "returned uncommitted", "autocommit"]
)
def test_every_way_a_write_transaction_ends_gives_the_writers_turn_back(
    tmp_path: Path, ending: str
) -> None:
    """Writers of one process take turns on a lock; a transaction that ends any way but a
    commit must hand the turn on, or the next writer would wait out its whole timeout."""
    path = tmp_path / "turns.db"
    with sqlite3.connect(path) as setup:  # not through the engine: it starts with no writer
        setup.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)")
    setup.close()
    engine = make_engine(f"sqlite:///{path}", timeout_seconds=30)
    try:
        other = engine.connect()  # the next writer: another connection, already drawn
        conn = engine.connect()
        if ending == "autocommit":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sa.text("INSERT INTO note (body) VALUES ('first')"))
        if ending == "commit":
            conn.commit()
        elif ending == "rollback":
            conn.rollback()
        elif ending == "error":
            with pytest.raises(sa.exc.IntegrityError):
                conn.execute(sa.text("INSERT INTO note (id, body) VALUES (1, 'x'), (1, 'y')"))
            conn.rollback()
        conn.close()  # "returned uncommitted": the pool resets it on the way back
        second = _write_in_thread(other, "second")
        second.join(timeout=5)
        assert not second.is_alive(), "the next writer is still waiting for its turn"
        other.close()
        with engine.connect() as check:
            bodies = check.execute(sa.text("SELECT body FROM note ORDER BY id")).scalars().all()
        kept = ending in ("commit", "autocommit")
        assert bodies == (["first", "second"] if kept else ["second"])
    finally:
        engine.dispose()


def test_many_writers_in_one_process_all_get_through(tmp_path: Path) -> None:
    """Sixteen threads write at once (a burst of events); each transaction reads, then
    writes twice. None fails, none is lost."""
    engine = make_engine(f"sqlite:///{tmp_path / 'burst.db'}", timeout_seconds=10)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE event (id INTEGER PRIMARY KEY, n INT)"))
        conn.execute(sa.text("CREATE TABLE tally (k INT PRIMARY KEY, n INT)"))
        conn.execute(sa.text("INSERT INTO tally VALUES (1, 0)"))
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(25):
                with engine.begin() as conn:
                    conn.execute(sa.text("SELECT n FROM tally WHERE k = 1")).scalar_one()
                    conn.execute(sa.text("INSERT INTO event (n) VALUES (:n)"), {"n": i * 100 + j})
                    conn.execute(sa.text("UPDATE tally SET n = n + 1 WHERE k = 1"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, [repr(e) for e in errors[:3]]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one() == 400
            assert conn.execute(sa.text("SELECT n FROM tally")).scalar_one() == 400
    finally:
        engine.dispose()
