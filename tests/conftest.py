"""Shared fixtures: a database on SQLite and on the real PostgreSQL, settings, the app.

Service-backed tests skip when the server is absent on a developer machine, and fail under
``CI=true``: CI must never pass by skipping them.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from backend.adapters import Adapters, default_adapters
from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.infra.cache import MemoryCache
from backend.infra.stream import InProcessEventStream
from backend.main import create_app
from backend.recommender.snapshot import SnapshotManager
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


@pytest.fixture
def postgres_url(postgres_admin: Engine) -> Iterator[str]:
    """A fresh, empty database per test, dropped afterwards."""
    name = f"shopwise_t_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


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
