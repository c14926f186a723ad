"""The fault-injection matrix: one workload, many faults, on real PostgreSQL and Redis.

For every fault the same requests run before, during and after it. During the fault each
request is answered (200 with a fallback, or a clear 503 with a message; never a 500, never a
hang), the failure shows in /health/ready and in /metrics, and every event the API accepted
(2xx) is stored exactly once in the end; an event refused with 503 is retried after recovery,
as a storefront would, and is stored once as well.

PostgreSQL is reached through a loopback TCP proxy the test can cut; Redis is a throwaway
server of the test's own; Chroma is the embedded store in the test's folder (fake embedder);
the LLM is answered by respx at the OpenAI edge.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import respx
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import func, select

from backend.adapters import default_adapters
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.db.models import Interaction
from backend.main import create_app
from backend.observability import deadline
from backend.wiring import build_components
from tests.conftest import POSTGRES_URL
from tests.factories import Shop, build_shop
from tests.integration.conftest import RedisProcess, TcpProxy, redis_settings
from tests.integration.fault_env import Env, LLMStub, build_index, remove_chroma
from tests.recommender.fakes import FakeEmbedder
from tests.waiting import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

DEADLINE = 1.0  # REQUEST_DEADLINE_SECONDS of the app under test: also the statement timeout
LLM_URL = "http://llm.fault.test/v1"


# --- the faults ------------------------------------------------------------------------------

ALL_OK = {
    "recommend_cached": {200},
    "recommend_fresh": {200},
    "search": {200},
    "similar": {200},
    "event": {201},
}


@dataclass(frozen=True)
class Fault:
    name: str
    component: str  # the /health component that shows it
    metric: str  # a /metrics line that shows it
    inject: Callable[[Env], object]
    heal: Callable[[Env], object]
    expect: dict[str, set[int]] = field(default_factory=lambda: ALL_OK)
    ready: int = 200
    status: str = "degraded"
    at_start: bool = False  # injected before the app starts
    llm_fallback: str | None = None  # the explanation's fallback_reason during the fault
    log_once: str = ""  # the outage's log line: once per outage, not once per request
    also: tuple[str, ...] = ()  # more /metrics lines that must show it

    def __str__(self) -> str:
        return self.name


def _llm(mode: str, reason: str) -> Fault:
    def inject(env: Env) -> None:
        env.llm.mode = mode

    def heal(env: Env) -> None:
        env.llm.mode = "good"

    return Fault(
        f"llm_{mode}",
        "llm",
        'shopwise_dependency_failures_total{component="llm"}',
        inject,
        heal,
        llm_fallback=reason,
        log_once="llm is failing",
        also=(
            f'shopwise_llm_calls_total{{outcome="{reason}"}}',
            f'shopwise_explanation_fallbacks_total{{reason="{reason}",surface="recommendation"}}',
        ),
    )


DB_DOWN = {
    # From the Redis cache, or refused when the request needs the database on the way.
    "recommend_cached": {200, 503},
    "recommend_fresh": {503},
    # Snapshot and Chroma only.
    "search": {200},
    "similar": {200},
    "event": {503},  # never accepted without being stored
}
DB_SLOW = DB_DOWN  # the shoppers table is locked: what reads it hits the statement timeout
VECTORS_LOST_AT_START = ALL_OK | {"search": {503}, "similar": {503}}

FAULTS = [
    Fault(
        "redis_stopped",
        "cache",
        'shopwise_component_up{component="cache"} 0.5',
        lambda env: env.redis.stop(),
        lambda env: env.redis.start(),
        log_once="Redis cache unavailable",
    ),
    Fault(
        "postgres_connections_dropped",
        "database",
        'shopwise_dependency_failures_total{component="database"}',
        lambda env: env.terminate_app_connections(),
        lambda env: None,
        log_once="database is failing",
    ),
    Fault(
        "postgres_unreachable",
        "database",
        'shopwise_dependency_failures_total{component="database"}',
        lambda env: env.proxy.cut(),
        lambda env: env.proxy.restore(),
        log_once="database is failing",
        expect=DB_DOWN,
        ready=503,
        status="down",
    ),
    Fault(
        "postgres_slow",
        "database",
        'shopwise_dependency_failures_total{component="database"}',
        lambda env: env.lock_shoppers(),
        lambda env: env.unlock_shoppers(),
        log_once="database is failing",
        expect=DB_SLOW,
    ),
    Fault(
        "chroma_folder_deleted",
        "index",
        'shopwise_dependency_failures_total{component="vectors"}',
        remove_chroma,
        lambda env: env.rebuild_index(),
        log_once="vectors is failing",
    ),
    Fault(
        "chroma_folder_corrupt",
        "index",
        'shopwise_dependency_failures_total{component="vectors"}',
        lambda env: env.corrupt_index(),
        lambda env: env.rebuild_index(),
        log_once="vectors is failing",
    ),
    Fault(
        "chroma_folder_missing_at_start",
        "index",
        'shopwise_dependency_failures_total{component="vectors"}',
        remove_chroma,
        lambda env: env.rebuild_index(),
        log_once="vectors is failing",
        expect=VECTORS_LOST_AT_START,
        at_start=True,
    ),
    Fault(
        "chroma_folder_corrupt_at_start",
        "index",
        'shopwise_dependency_failures_total{component="vectors"}',
        lambda env: env.corrupt_index(),
        lambda env: env.rebuild_index(),
        log_once="vectors is failing",
        expect=VECTORS_LOST_AT_START,
        at_start=True,
    ),
    _llm("429", "llm_rate_limited"),
    _llm("500", "llm_unavailable"),
    _llm("timeout", "llm_timeout"),
    _llm("garbage", "llm_bad_response"),
]


# --- fixtures ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """The tiny shop, migrated, seeded and indexed once per module; each test copies it."""

    database: str
    shop: Shop
    chroma: Path


@pytest.fixture(scope="module")
def template(
    postgres_admin: sa.engine.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Template]:
    name = f"shopwise_tpl_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(False)
    engine = make_engine(url)
    upgrade(engine)
    shop = build_shop(engine)
    chroma = tmp_path_factory.mktemp("fault-template") / "chroma"
    build_index(engine, chroma)
    engine.dispose()  # a template database must have no connections
    yield Template(name, shop, chroma)
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fault_database(postgres_admin: sa.engine.Engine, template: Template) -> Iterator[str]:
    name = f"shopwise_t_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
    yield sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(False)
    with postgres_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def env(
    tmp_path: Path, fault_database: str, template: Template, redis_server: RedisProcess
) -> Iterator[Env]:
    url = sa.engine.make_url(fault_database)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    environment = Env(
        tmp_path=tmp_path,
        shop=template.shop,
        proxy=proxy,
        postgres_url=fault_database,
        redis=redis_server,
        llm=LLMStub(),
        chroma_path=tmp_path / "chroma",
        app_database_url=url.set(port=proxy.port).render_as_string(False),
    )
    shutil.copytree(template.chroma, environment.chroma_path)
    try:
        with respx.mock(base_url=LLM_URL, assert_all_called=False) as router:
            router.post("/chat/completions").mock(side_effect=environment.llm)
            yield environment
    finally:
        if environment.locker is not None:
            environment.unlock_shoppers()
        if environment.admin is not None:
            environment.admin.dispose()
        proxy.close()


def start_app(env: Env, **overrides: object) -> None:
    values: dict[str, object] = {
        "chroma_path": env.chroma_path,
        "request_deadline_seconds": DEADLINE,
        "openai_api_key": "sk-fault-matrix",
        "openai_base_url": LLM_URL,
        "llm_deadline_seconds": 0.5,
        "llm_max_attempts": 2,
        "llm_circuit_failures": 50,  # the matrix watches failures, not the breaker
        "cf_auto_train": False,
    }
    settings = redis_settings(
        env.tmp_path, env.app_database_url, env.redis.url, "fault:", **(values | overrides)
    )
    adapters = replace(default_adapters(settings), embedder=FakeEmbedder(dim=64))
    components = build_components(settings, adapters)
    env.components = components
    env.api = TestClient(create_app(components=components))
    env.api.__enter__()


def stop_app(env: Env) -> None:
    if env.api is not None:
        env.api.__exit__(None, None, None)
    if env.components is not None:
        env.components.db.dispose()
        if env.components.llm is not None:
            env.components.llm.close()  # type: ignore[attr-defined]


def stored_events(env: Env) -> dict[str, int]:
    with env.pg().connect() as conn:
        rows = conn.execute(
            select(Interaction.event_id, func.count())
            .where(Interaction.event_id.in_(list(env.events)))  # type: ignore[union-attr]
            .group_by(Interaction.event_id)
        ).all()
    return {str(event_id): int(n) for event_id, n in rows}


# --- the matrix ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_every_request_is_answered_the_failure_shows_and_no_event_is_lost(
    env: Env, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    mark = 0
    if fault.at_start:
        fault.inject(env)
    start_app(env)
    try:
        before = env.workload()
        before = env.workload()  # the second recommend_cached is a cache hit
        if not fault.at_start:
            expected = {"event": 201} | {k: 200 for k in ALL_OK if k != "event"}
            assert {k: r.status_code for k, r in before.items()} == expected
            assert before["recommend_cached"].json()["cached"] is True
            assert before["recommend_fresh"].json()["explanation_source"] == "llm"
            mark = len(caplog.records)
            fault.inject(env)

        for _ in range(2):  # two rounds: the outage is logged once, not once per request
            during = env.workload()
            got = {kind: r.status_code for kind, r in during.items()}
            wrong = {k: s for k, s in got.items() if s not in fault.expect[k]}
            assert not wrong, f"{fault}: {wrong} (expected {fault.expect})"
            if fault.llm_fallback:
                body = during["recommend_fresh"].json()
                assert body["explanation_source"] == "template"
                assert body["fallback_reason"] == fault.llm_fallback
                assert body["llm_explanation"]  # the shopper still gets a text
            for kind in ("search", "similar"):
                if during[kind].status_code == 503:
                    assert "semantic search is unavailable" in during[kind].json()["detail"]
            if during["event"].status_code == 503:
                assert "database" in during["event"].json()["detail"]

        ready = env.call("ready", "GET", "/health/ready")
        assert ready.status_code == fault.ready, ready.text
        component = ready.json()["components"][fault.component]
        assert component["status"] == fault.status, component
        assert ready.json()["status"] == ("down" if fault.status == "down" else "degraded")
        metrics = env.call("metrics", "GET", "/metrics")
        assert metrics.status_code == 200
        for line in (fault.metric, *fault.also):
            assert line in metrics.text, f"{line} not in /metrics"

        outage_lines = [
            r for r in caplog.records[mark:] if r.getMessage().startswith(fault.log_once)
        ]
        assert len(outage_lines) == 1, [r.getMessage() for r in outage_lines]

        fault.heal(env)
        assert env.components is not None
        # A failure stays "recent" for 30 s in production; here the outage ends at once.
        env.components.metrics.dependencies.window_seconds = 0.1
        if fault.at_start:
            # The snapshot held no vectors; the rebuilt index moved its version, so the
            # periodic refresh (SNAPSHOT_REFRESH_SECONDS, off in tests) reloads it.
            assert env.components.snapshots.refresh_if_stale()

        def healthy() -> bool:
            report = env.api.get("/health/ready")  # type: ignore[union-attr]
            return (
                report.status_code == 200
                and report.json()["components"][fault.component]["status"] == "ok"
            )

        wait_for(healthy, f"{fault.component} to recover")
        env.retry_refused_events()
        after = env.workload()
        assert {k: r.status_code for k, r in after.items()} == {
            "event": 201,
            **{k: 200 for k in ALL_OK if k != "event"},
        }
        wait_for(
            lambda: env.workload()["recommend_fresh"].json()["explanation_source"] == "llm",
            "LLM explanations again",
        )
    finally:
        stop_app(env)

    stored = stored_events(env)
    assert stored == dict.fromkeys(env.events, 1), "an accepted event was lost or doubled"
    assert all(status in (200, 201) for status in env.events.values())
    assert all(status != 500 for _, status in env.statuses)


# --- the request deadline -------------------------------------------------------------------


def test_the_llm_gets_only_what_is_left_of_the_request_deadline(env: Env) -> None:
    start_app(env, llm_deadline_seconds=8.0)  # far more than the request's whole budget
    try:
        dave = env.shop.users["dave"].id
        body = env.call("recommend", "GET", f"/recommend/{dave}", params={"explain": "wait"}).json()
    finally:
        stop_app(env)
    assert body["explanation_source"] == "llm"
    timeouts = env.llm.read_timeouts
    assert timeouts and all(0 < t <= DEADLINE for t in timeouts), timeouts


def test_a_spent_budget_explains_with_the_template_and_spares_the_llm(env: Env) -> None:
    start_app(env)
    try:
        assert env.components is not None and env.components.llm is not None
        dave = env.shop.users["dave"].id
        request = env.components.recommender.explanation_request(dave, top_n=3)
        token = deadline.start(0.0)  # nothing left, as after a slow database
        try:
            explanation = env.components.explainer.explain(request)
        finally:
            deadline.deadline_var.reset(token)
        assert explanation.source == "template"
        assert explanation.fallback_reason == "request_deadline"
        assert env.llm.calls == 0  # not even tried
        assert env.components.llm.circuit().state == "closed"  # the LLM is not to blame
        with pytest.raises(deadline.DeadlineExceeded, match="within the request deadline"):
            token = deadline.start(0.0)
            try:
                deadline.check("the recommendation")
            finally:
                deadline.deadline_var.reset(token)
    finally:
        stop_app(env)
