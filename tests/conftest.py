"""Shared fixtures: a database on SQLite and on the real PostgreSQL, settings, the app.

Service-backed tests skip when the server is absent on a developer machine, and fail under
``CI=true``: CI must never pass by skipping them.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from queue import Queue

import argon2
import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from backend.adapters import Adapters, default_adapters
from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.db.engine import make_engine
from backend.db.migrate import current_revision, upgrade
from backend.infra.cache import MemoryCache
from backend.infra.stream import InProcessEventStream
from backend.main import create_app
from backend.recommender.snapshot import SnapshotManager
from backend.security import passwords
from backend.services.snapshots import snapshot_manager
from backend.services.track import TrackingService
from backend.wiring import Components, build_components
from tests.factories import Shop, build_shop
from tests.llm.fakes import FakeLLM
from tests.llm.real_server import LlamaServer, RunningServer, ServerUnavailable, packaged_model
from tests.settings import sqlite_url

POSTGRES_URL = os.environ.get(
    "SHOPWISE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def service_unavailable(name: str, error: BaseException) -> None:
    message = f"{name} is not reachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; it is required under CI=true")
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at argon2-cffi's cheapest parameters, in this process (a server a test starts
    in a subprocess keeps the real ones).

    At the production parameters each hash or verify costs 0.2 s here; a login, a fixture's
    ``create_admin`` and every login the fuzzer sends paid it (about 20 s of the schemathesis
    run). What the tests check is which accounts log in, not argon2's cost."""
    cheap = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", cheap)
        # Unknown users are verified against this; at the old parameters they would still pay.
        patch.setattr(passwords, "_DUMMY_HASH", cheap.hash("not-a-real-password"))
        yield


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        service_unavailable("PostgreSQL", exc)
    yield engine
    engine.dispose()


class DatabaseDropper:
    """Drops the tests' databases on a thread of its own.

    ``DROP DATABASE`` waits for a checkpoint: 0.5-0.9 s each here, in a row or not, as much
    as the rest of a small test. Nothing after a test's teardown reads its database (its name
    is its own), so the next test need not wait for it: the drops overlap the tests. The
    queue is bounded (64 databases of about 8 MB): if the drops fall behind, a teardown waits.
    ``close()`` drains it at the end of the session and reports a drop that failed."""

    def __init__(self, admin: Engine) -> None:
        self._admin = admin
        self._names: Queue[str | None] = Queue(maxsize=64)
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="drop-databases", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        self._names.put(name)

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                with self._admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except BaseException as exc:  # reported by close(), at the end of the session
                self._errors.append(exc)

    def close(self) -> None:
        self._names.put(None)
        self._thread.join()
        if self._errors:
            raise RuntimeError(f"{len(self._errors)} test database(s) not dropped") from (
                self._errors[0]
            )


@pytest.fixture(scope="session")
def database_dropper(postgres_admin: Engine) -> Iterator[DatabaseDropper]:
    dropper = DatabaseDropper(postgres_admin)
    yield dropper
    dropper.close()


@functools.cache
def migrations_head() -> str | None:
    """The newest revision of our migrations, read from the scripts (no database needed)."""
    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "backend" / "db" / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def _migrate_once(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()  # a template must have no open connection when it is copied


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file brought to the head by ``upgrade()`` once per worker; ``db`` copies it.

    Migrating took 0.1-0.4 s per test (Alembic loads eleven scripts and runs them); a copy
    of the same bytes takes under 1 ms."""
    path = tmp_path_factory.mktemp("migrated") / "template.db"
    _migrate_once(f"sqlite:///{path}")
    # The last connection's close checkpoints the WAL into the file: the file is the database.
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_admin: Engine) -> Iterator[str]:
    """A PostgreSQL database brought to the head by ``upgrade()`` once per worker; ``db``'s
    databases are created from it (``CREATE DATABASE … TEMPLATE``, a copy of its files)."""
    name = f"shopwise_tpl_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        _migrate_once(_postgres_url_of(name))
        yield name
    finally:
        with postgres_admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _postgres_url_of(name: str) -> str:
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    return url.render_as_string(hide_password=False)


# The fixtures that bring the test's database to the head first thing: ``database_url`` and
# ``postgres_url`` hand them a copy of the migrated template instead of an empty database.
MIGRATING_FIXTURES = frozenset({"db", "pg_engine"})


def _migrates(request: pytest.FixtureRequest) -> bool:
    return not MIGRATING_FIXTURES.isdisjoint(request.fixturenames)


@pytest.fixture
def postgres_url(
    postgres_admin: Engine, database_dropper: DatabaseDropper, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh database per test, dropped afterwards: empty, or, for a test that uses ``db``
    or ``pg_engine`` (which would migrate it first thing), a copy of the migrated template."""
    name = f"shopwise_t_{uuid.uuid4().hex[:12]}"
    template = ""
    if _migrates(request):
        template = f' TEMPLATE "{request.getfixturevalue("postgres_template")}"'
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{template}'))
    yield _postgres_url_of(name)
    database_dropper.drop(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        if _migrates(request):  # see postgres_url
            shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "shopwise.db")
        return url
    return str(request.getfixturevalue("postgres_url"))


def migrated_engine(url: str) -> Engine:
    """An engine on ``url`` with the schema at the head: handed over migrated (a copy of a
    template), or migrated here (a module that provides its own ``database_url``)."""
    engine = make_engine(url)
    if current_revision(engine) != migrations_head():
        upgrade(engine)
    return engine


@pytest.fixture
def db(database_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The test's database at the migrations' head (see ``migrated_engine``)."""
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        # A module's own SQLite ``database_url`` (a file still to be made): the template's
        # copy, as ``database_url`` hands over its own.
        shutil.copyfile(request.getfixturevalue("sqlite_template"), url.database)
    engine = migrated_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A SQLite database of the test's own at the migrations' head (a copy of the template),
    for a fixture that builds an app on SQLite outside ``database_url``."""
    path = tmp_path / "migrated.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=database_url,
        snapshot_refresh_seconds=0,
        prompts_dir=PROJECT_ROOT / "prompts",
    )


@pytest.fixture
def fake_llm(request: pytest.FixtureRequest) -> FakeLLM | None:
    """None: the app has the LLM its settings name (none, in tests). A test runs the app on
    a fake LLM with ``@uses_fake_llm(responses…)`` (tests.llm.fakes), which parametrizes this."""
    responses = getattr(request, "param", None)
    return None if responses is None else FakeLLM(responses)


@pytest.fixture
def adapters(settings: Settings, fake_llm: FakeLLM | None) -> Adapters:
    """The external systems the settings name; a test module overrides this fixture to
    replace another one (``dataclasses.replace(default_adapters(settings), embedder=…)``)."""
    adapters = default_adapters(settings)
    return adapters if fake_llm is None else dataclasses.replace(adapters, llm=fake_llm)


@pytest.fixture
def components(settings: Settings, adapters: Adapters, db: Engine) -> Iterator[Components]:
    built = build_components(settings, adapters)
    yield built
    built.db.dispose()


@pytest.fixture
def client(components: Components) -> Iterator[TestClient]:
    with TestClient(create_app(components=components)) as test_client:
        yield test_client


# --- Redis -----------------------------------------------------------------------------------

REDIS_URL = os.environ.get("SHOPWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis server: skips locally when absent, fails under CI=true."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        service_unavailable("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own on the shared server (removed afterwards), so
    concurrent runs never see each other's keys or streams."""
    import redis

    prefix = f"shopwise-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


# --- a real model server (llama.cpp) --------------------------------------------------------


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """llama.cpp's OpenAI-compatible server on the packaged small model, one per session:
    skips locally when llama-cpp-python or the model is missing, fails under CI=true.

    Under xdist each worker that runs a test marked ``llm_server`` starts its own (about 8 s
    and 0.6 GB; ``xdist_group`` cannot pin them to one worker: xdist 3.8 groups by rewriting
    the node id, which pytest 9 no longer reads)."""
    folder = tmp_path_factory.mktemp("llm-server")
    try:
        server = LlamaServer(packaged_model(folder), folder / "server.log")
        running = server.start()
    except ServerUnavailable as exc:
        service_unavailable("The llama.cpp model server", exc)
    yield running
    server.stop()


# --- the tiny shop and the services over it -------------------------------------------------


@pytest.fixture
def shop(db: Engine) -> Shop:
    return build_shop(db)


@pytest.fixture
def snapshots(db: Engine, shop: Shop) -> SnapshotManager:
    manager = snapshot_manager(db)
    manager.get()
    return manager


@pytest.fixture
def queue() -> InProcessEventStream:
    return InProcessEventStream()


@pytest.fixture
def tracker(db: Engine, snapshots: SnapshotManager, queue: InProcessEventStream) -> TrackingService:
    return TrackingService(db=db, snapshots=snapshots, cache=MemoryCache(), stream=queue)
