"""The embedded default (SQLite) serves reads while a write is under way.

WAL lets readers go on while a writer holds its transaction, ``synchronous=NORMAL`` makes a
commit one append instead of two syncs, and the busy timeout makes writers queue for each
other instead of failing with "database is locked".
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

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
