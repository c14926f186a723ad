"""``GET /recommend/{user_id}/explanation/stream``: server-sent events, checked before final.

Offline (no key) it streams the template; with a fake LLM at our interface it streams deltas
and a verified final text, or the template after a failed check; end to end, the real SDK
talks HTTP (plain, streaming, and the chat parser's function call) to an OpenAI-compatible
fake server under uvicorn.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Iterator
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from backend.api.routes.explanations import _closing
from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.llm.explainer import ExplanationDelta
from backend.llm.writer import answer_max_tokens
from backend.main import create_app
from backend.services.explanations import explanation_stream
from backend.wiring import Components, build_components
from tests.api.test_observability import metric
from tests.factories import Shop
from tests.llm.fake_openai_server import FakeOpenAI
from tests.llm.fakes import uses_fake_llm
from tests.waiting import wait_for


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database layer is tested on both elsewhere; this is about HTTP."""
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


CONCURRENCY = 2  # LLM_CONCURRENCY here: model calls at once


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"llm_concurrency": CONCURRENCY})


# The model within the request, as before the explanation queue (its tests: test_explanation_jobs).
WAIT = {"top_n": 2, "explain": "wait"}


def events(response) -> list[tuple[str, dict]]:
    out = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def url(shop: Shop, username: str = "alice") -> str:
    return f"/recommend/{shop.users[username].id}/explanation/stream"


def fitting(messages) -> str:
    refs = messages[1].content.rsplit("each of: ", 1)[1].rstrip(".").split(", ")
    return json.dumps(
        {
            "intro": "Hi Alice!",
            "reasons": [{"product_id": r, "reason": "A fine match."} for r in refs],
        }
    )


def test_without_a_key_the_template_is_streamed_and_marked_as_such(api, shop):
    params = {"top_n": 3, "algorithm": "weighted"}
    response = api.get(url(shop), params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response)
    assert got[0][0] == "start"
    assert got[0][1]["mode"] == "template"
    assert [p["name"] for p in got[0][1]["products"]][0] == "Wireless Earbuds"
    assert {name for name, _ in got[1:-1]} == {"delta"}
    name, final = got[-1]
    assert name == "final"
    assert final["source"] == "template" and final["verified"] is False
    assert final["fallback_reason"] == "no_api_key"
    assert "".join(d["text"] for n, d in got if n == "delta") == final["text"]
    body = api.get(f"/recommend/{shop.users['alice'].id}", params=params).json()
    assert final["text"] == body["llm_explanation"]
    assert body["fallback_reason"] == "no_api_key"


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [("/recommend/00000000-0000-0000-0000-000000000000/explanation/stream", {}, 404),
     ("/recommend/nope/explanation/stream", {}, 422),
     ("ALICE", {"algorithm": "magic"}, 422),
     ("ALICE", {"top_n": 0}, 422)],
)  # fmt: skip
def test_bad_requests_are_http_errors_not_broken_streams(api, shop, path, params, status):
    response = api.get(url(shop) if path == "ALICE" else path, params=params)
    assert response.status_code == status
    assert "detail" in response.json()


@uses_fake_llm(fitting)
def test_with_an_llm_deltas_arrive_then_a_verified_final(api, shop):
    got = events(api.get(url(shop), params={"top_n": 2, "algorithm": "weighted"}))
    assert got[0][1]["mode"] == "llm"
    deltas = "".join(d["text"] for n, d in got if n == "delta")
    assert deltas.startswith("Hi Alice!") and "A fine match." in deltas
    name, final = got[-1]
    names = [p["name"] for p in got[0][1]["products"]]
    prices = {"Wireless Earbuds": "59.99", "Desk Lamp": "34.00"}
    assert final == {
        "text": "\n".join(["Hi Alice!", *(f"- {n} (${prices[n]}): A fine match." for n in names)]),
        "source": "llm",
        "verified": True,
        "fallback_reason": None,
        "cached": False,
    }
    stats = api.get("/explanations/stats").json()
    assert stats["checks_passed"] == 1 and stats["explanations_by_source"] == {"llm": 1}


@uses_fake_llm(lambda m: fitting(m).replace("A fine match.", "Now 50% off, only $5!"))
def test_a_stream_that_fails_the_check_ends_with_the_template(api, shop):
    got = events(api.get(url(shop), params={"top_n": 2}))
    final = got[-1][1]
    assert final["source"] == "template" and final["verified"] is False
    assert final["fallback_reason"].startswith("check_failed:")
    assert "50% off" not in final["text"] and final["text"].startswith("Hi Alice Lee!")
    stats = api.get("/explanations/stats").json()
    assert stats["checks_failed"] == 1
    assert stats["fallbacks_by_reason"] == {final["fallback_reason"]: 1}


# --- the model server's concurrency, shared with the explanation jobs ----------------------


class HeldModel:
    """An answer the model gives only when the test lets it, counting the calls at once."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, messages) -> str:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            assert self.go.wait(timeout=30), "the test never let the model answer"
            return fitting(messages)
        finally:
            with self._lock:
                self.now -= 1


@uses_fake_llm()
def test_concurrent_streams_never_ask_the_model_more_than_llm_concurrency_at_once(
    api, shop, fake_llm, components
):
    assert components.explanations.slots.concurrency == CONCURRENCY == 2
    model = HeldModel()
    fake_llm.add(*[model] * 8)  # the streams' calls, and the queued job's
    finals: list[dict] = []

    def stream() -> None:
        finals.append(events(api.get(url(shop), params={"top_n": 2}))[-1][1])

    threads = [threading.Thread(target=stream) for _ in range(5)]
    for thread in threads:
        thread.start()
    # Two streams hold the slots, held in the model; the others get none and answer at once.
    wait_for(lambda: len(finals) == 3, "three final events", interval=0.01)
    wait_for(lambda: model.now == 2, "two calls in the model at once", interval=0.01)
    assert {(f["source"], f["fallback_reason"], f["verified"]) for f in finals} == {
        ("template", "llm_busy", False)
    }
    model.go.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(finals) == 5
    assert [f["source"] for f in finals[3:]] == ["llm", "llm"]
    assert model.most == 2
    # The busy streams queued the list's job (once: one list): its text is served later.
    assert components.explanations.stats.submitted == {"queued": 1, "duplicate": 2}


@uses_fake_llm(fitting)  # one answer: a second model call would fail the test
def test_a_cached_text_is_streamed_without_the_model(api, shop, fake_llm):
    first = events(api.get(url(shop), params={"top_n": 2}))
    assert (first[-1][1]["verified"], first[-1][1]["cached"]) == (True, False)
    again = events(api.get(url(shop), params={"top_n": 2}))
    assert again[-1][1] == first[-1][1] | {"cached": True}
    assert "".join(d["text"] for n, d in again if n == "delta") == again[-1][1]["text"]
    assert len(fake_llm.history) == 1


@uses_fake_llm()  # no answer at all: a model call would fail the test
def test_a_list_whose_answer_failed_lately_streams_the_template_without_the_model(
    api, shop, components
):
    alice = shop.users["alice"].id
    request, explainer = components.recommender.explanation_job(alice, top_n=2)
    explainer.remember_failure(request, "check_failed:unsupported_price")  # as a job leaves it
    final = events(api.get(url(shop), params={"top_n": 2}))[-1][1]
    assert final["fallback_reason"] == "check_failed:unsupported_price"
    assert (final["source"], final["verified"], final["cached"]) == ("template", False, True)


@uses_fake_llm(fitting)
def test_a_stream_closed_early_frees_its_slot(shop, components):
    slots = components.explanations.slots
    stream = explanation_stream(
        recommender=components.recommender,
        user_id=shop.users["alice"].id,
        top_n=2,
        strategy=None,
        slots=slots,
        jobs=components.explanations.jobs,
    )
    assert isinstance(next(stream.events), ExplanationDelta)  # the model is writing
    leases = [slots.acquire(timeout=0) for _ in range(2)]
    assert [lease is not None for lease in leases] == [True, False]  # one slot is held
    leases[0].release()
    stream.events.close()  # as the route does when the client goes
    leases = [slots.acquire(timeout=0) for _ in range(2)]
    assert [lease is not None for lease in leases] == [True, True]


def test_the_route_closes_the_events_when_the_response_ends_early():
    closed = threading.Event()

    def sse() -> Generator[str, None, None]:
        try:
            yield "start"
            yield "final"
        finally:
            closed.set()

    async def leave_after_one(events: Generator[str, None, None]) -> None:
        chunks = _closing(events)
        assert await anext(chunks) == "start"
        await chunks.aclose()  # what Starlette does when the client goes

    events_ = sse()  # held here: only an explicit close ends it
    anyio.run(leave_after_one, events_)
    assert closed.is_set()


@uses_fake_llm()
def test_health_shows_the_llm_circuit(api):
    llm = api.get("/health").json()["components"]["llm"]
    assert llm["status"] == "ok"
    assert "circuit closed" in llm["detail"] and "fake-model" in llm["detail"]


# --- end to end: the real SDK against an OpenAI-compatible server ------------------------


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def e2e(
    tmp_path: Path, database_url: str, db: Engine, shop: Shop, openai_server: FakeOpenAI
) -> Iterator[tuple[TestClient, Components]]:
    settings: Settings = load_settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=database_url,
        snapshot_refresh_seconds=0,
        prompts_dir=PROJECT_ROOT / "prompts",
        openai_api_key="sk-e2e",
        openai_base_url=openai_server.base_url,
        llm_model="e2e-model",
        llm_deadline_seconds=8,
        llm_max_attempts=2,
        chat_reply_budget_seconds=60,  # the chat tests here are about the wire, not the wait
    )
    components = build_components(settings)
    with TestClient(create_app(components=components)) as client:
        yield client, components
    components.db.dispose()


def test_end_to_end_through_the_real_sdk_http_and_streaming(e2e, shop, openai_server):
    client, components = e2e
    alice = shop.users["alice"].id
    body = client.get(f"/recommend/{alice}", params=WAIT).json()
    assert body["explanation_source"] == "llm", body["fallback_reason"]
    assert body["llm_explanation"].startswith("Hi there, here are your picks.")
    sent = openai_server.requests[-1]
    assert sent["model"] == "e2e-model"
    assert sent["max_tokens"] == answer_max_tokens(2, floor=150)  # sized to the answer
    assert sent["response_format"]["type"] == "json_schema"

    got = events(client.get(f"/recommend/{alice}/explanation/stream", params={"top_n": 3}))
    assert openai_server.requests[-1]["stream"] is True
    assert sum(1 for n, _ in got if n == "delta") > 1
    final = got[-1][1]
    assert final["source"] == "llm" and final["verified"] is True
    assert final["text"].count("A fine match.") == 3

    # The same list again: served from the explanation cache, no new LLM call.
    calls = len(openai_server.requests)
    again = events(client.get(f"/recommend/{alice}/explanation/stream", params={"top_n": 3}))
    assert again[-1][1]["cached"] is True and len(openai_server.requests) == calls

    health = client.get("/health").json()["components"]["llm"]
    assert "e2e-model: circuit closed" in health["detail"]


def test_end_to_end_a_lying_or_failing_llm_falls_back(e2e, shop, openai_server):
    client, _ = e2e
    bob, dave = shop.users["bob"].id, shop.users["dave"].id
    openai_server.mode = "lying"
    body = client.get(f"/recommend/{bob}", params=WAIT).json()
    assert body["explanation_source"] == "template"
    assert body["fallback_reason"] == "check_failed:unsupported_price"
    assert "Only $1 today" not in body["llm_explanation"]
    final = events(client.get(f"/recommend/{bob}/explanation/stream", params={"top_n": 2}))[-1][1]
    assert (final["source"], final["verified"]) == ("template", False)

    openai_server.mode = "error"
    body = client.get(f"/recommend/{dave}", params=WAIT).json()
    assert (body["explanation_source"], body["fallback_reason"]) == ("template", "llm_unavailable")


def test_metrics_count_llm_calls_evidence_checks_fallbacks_and_cached_text(
    e2e, shop, openai_server
):
    client, _ = e2e
    alice, bob, dave = (str(shop.users[n].id) for n in ("alice", "bob", "dave"))
    client.get(f"/recommend/{alice}", params=WAIT)  # checked LLM text
    events(client.get(f"/recommend/{alice}/explanation/stream", params={"top_n": 2}))  # cached
    openai_server.mode = "lying"  # fails the check, and its retry fails it again
    client.get(f"/recommend/{bob}", params=WAIT)
    openai_server.mode = "error"
    client.get(f"/recommend/{dave}", params=WAIT)

    body = client.get("/metrics").text
    calls = "shopwise_llm_calls_total"
    assert metric(body, calls, outcome="ok") == 3  # alice, bob's answer and its retry
    assert metric(body, calls, outcome="llm_unavailable") == 1
    checks = "shopwise_evidence_checks_total"
    assert metric(body, checks, surface="recommendation", result="passed") == 1
    assert metric(body, checks, result="failed", reason="unsupported_price") == 2
    fallbacks = "shopwise_explanation_fallbacks_total"
    assert metric(body, fallbacks, reason="check_failed:unsupported_price") == 1
    assert metric(body, fallbacks, surface="recommendation", reason="llm_unavailable") == 1
    lookups = "shopwise_cache_requests_total"
    assert metric(body, lookups, cache="explanation", result="hit") == 1
    assert metric(body, "shopwise_recommendations_total", explanation_source="llm") == 1


def test_end_to_end_the_chat_understands_a_message_through_a_function_call(
    e2e, shop, openai_server
):
    client, _ = e2e
    body = client.post("/chat", json={"message": "a gift for a friend under $40"}).json()
    sent = next(r for r in openai_server.requests if r.get("tools"))
    assert sent["tool_choice"]["function"]["name"] == "set_filters"
    assert "max_price" in sent["tools"][0]["function"]["parameters"]["properties"]
    assert body["filters"]["max_price"] == 40
    assert all(float(p["price"]) <= 40 for p in body["products"])

    openai_server.mode = "lying"  # a category the catalog does not have is dropped, and said
    body = client.post(
        "/chat", json={"session_id": body["session_id"], "message": "show me spaceships"}
    ).json()
    assert "Spaceships" not in json.dumps(body["filters"])
    assert any("Spaceships" in note for note in body.get("notes", [])), body
