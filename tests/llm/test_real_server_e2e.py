"""End to end against a real model server: the openai SDK, HTTP, llama.cpp and a real model.

The fake servers elsewhere answer instantly and exactly as asked; this one is SmolLM2 135M
Instruct on the CPU, run by llama.cpp's OpenAI-compatible server (``tests/llm/real_server.py``).
What a model this small writes is not under our control, so the tests assert what is: the
shape the server's grammar enforces (JSON mode, a JSON schema, a forced function call, the
request's own answer grammar), that whatever the model writes goes through the evidence check
and is either shipped as checked LLM text or replaced by the template with a recorded reason,
that temperature 0 repeats itself, and that a short deadline falls back in bounded time. The
model's pass rate is a measurement, in ``bench/local_llm_bench.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from backend.chat.llm_parser import FILTER_TOOL, LLMFilters
from backend.config import PROJECT_ROOT, load_settings
from backend.llm.client import ChatMessage, Tool
from backend.llm.openai_client import OpenAIChatClient, RetryPolicy
from backend.main import create_app
from backend.wiring import Components, build_components
from tests.api.test_explanation_stream import events
from tests.api.test_observability import metric
from tests.factories import Shop, build_shop
from tests.llm.real_server import RunningServer

pytestmark = pytest.mark.llm_server

# Generous (the most the settings allow): the cores are shared with the other xdist worker
# and whatever else runs, and an answer under a JSON grammar takes tens of seconds of CPU.
DEADLINE = 120.0
# What a wrong answer of the model may be called; anything else (the server down, a 4xx) is
# our bug or the server's, not the model's.
MODEL_FAILURES = ("bad_json", "check_failed:")

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intro": {"type": "string", "maxLength": 120},
        "reasons": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {
                "type": "object",
                "properties": {
                    "product_id": {"type": "string", "enum": ["P1", "P2"]},
                    "reason": {"type": "string", "maxLength": 120},
                },
                "required": ["product_id", "reason"],
            },
        },
    },
    "required": ["intro", "reasons"],
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the database layer is tested on both elsewhere; this is about the model."""
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


@pytest.fixture
def shop(db: Engine) -> Shop:
    return build_shop(db)


@contextmanager
def app_with_llm(
    server: RunningServer, tmp_path: Path, database_url: str, **overrides: Any
) -> Iterator[tuple[TestClient, Components]]:
    """The app as configured for an OpenAI-compatible server: base URL, key, model name."""
    settings = load_settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=database_url,
        snapshot_refresh_seconds=0,
        prompts_dir=PROJECT_ROOT / "prompts",
        openai_api_key="sk-local-server-ignores-it",
        openai_base_url=server.base_url,
        llm_model=server.model,
        llm_temperature=0.0,
        llm_max_attempts=1,
        **{"llm_deadline_seconds": DEADLINE, "request_deadline_seconds": DEADLINE + 30,
           **overrides},
    )  # fmt: skip
    components = build_components(settings)
    try:
        with TestClient(create_app(components=components)) as client:
            yield client, components
    finally:
        components.db.dispose()


@pytest.fixture
def llm(llm_server: RunningServer) -> Iterator[OpenAIChatClient]:
    client = OpenAIChatClient(
        api_key="sk-local",
        model=llm_server.model,
        base_url=llm_server.base_url,
        temperature=0.0,
        max_tokens=120,
        policy=RetryPolicy(deadline_seconds=DEADLINE, max_attempts=1),
    )
    yield client
    client.close()


EXPLAIN = [
    ChatMessage("system", "You write short product recommendations as JSON."),
    ChatMessage(
        "user",
        "Shopper: Alice. [P1] Desk Lamp, $34.00. [P2] Phone Case, $15.00. "
        'Answer as {"intro": "...", "reasons": [{"product_id": "P1", "reason": "..."}]}.',
    ),
]


# --- (a) structured output: the server's grammar makes the answer parse ------------------


def test_the_models_endpoint_names_the_packaged_model(llm_server):
    sdk = openai.OpenAI(api_key="sk-local", base_url=llm_server.base_url, max_retries=0)
    try:
        assert [m.id for m in sdk.models.list()] == [llm_server.model]
    finally:
        sdk.close()


def test_json_mode_through_our_client_gives_a_json_object(llm):
    completion = llm.complete(EXPLAIN, json_mode=True)
    answer = json.loads(completion.text)  # the grammar allows nothing else
    assert isinstance(answer, dict)
    assert completion.model == llm.model
    assert completion.finish_reason in ("stop", "length")


def test_temperature_zero_repeats_itself(llm):
    first = llm.complete(EXPLAIN, json_mode=True).text
    assert llm.complete(EXPLAIN, json_mode=True).text == first


def test_a_json_schema_becomes_a_grammar_the_answer_follows(llm_server):
    """llama.cpp's server takes the schema as ``{"type": "json_object", "schema": ...}``
    (its dialect) and turns it into a grammar: the answer validates by construction."""
    sdk = openai.OpenAI(api_key="sk-local", base_url=llm_server.base_url, max_retries=0)
    try:
        response = sdk.chat.completions.create(
            model=llm_server.model,
            messages=[{"role": m.role, "content": m.content} for m in EXPLAIN],
            temperature=0,
            max_tokens=200,
            response_format={"type": "json_object", "schema": ANSWER_SCHEMA},  # type: ignore[typeddict-unknown-key]
            timeout=DEADLINE,
        )
    finally:
        sdk.close()
    choice = response.choices[0]
    assert choice.finish_reason == "stop", choice.message.content  # not cut off mid-JSON
    answer = json.loads(choice.message.content or "")
    assert set(answer) == {"intro", "reasons"}
    assert [r["product_id"] in ("P1", "P2") for r in answer["reasons"]] == [True, True]
    assert all(isinstance(r["reason"], str) for r in answer["reasons"])


def test_openais_own_json_schema_format_is_refused_by_this_server(llm_server):
    """``{"type": "json_schema", ...}`` (OpenAI's spelling) is refused, not ignored: a client
    that wants a schema from this server must use the tool call or the dialect above. The
    refusal is an HTTP 500 in llama-cpp-python 0.3.36 (its request validation error, wrapped),
    which a client would take for an outage and retry."""
    sdk = openai.OpenAI(api_key="sk-local", base_url=llm_server.base_url, max_retries=0)
    try:
        with pytest.raises(openai.APIStatusError) as refused:
            sdk.chat.completions.create(
                model=llm_server.model,
                messages=[{"role": m.role, "content": m.content} for m in EXPLAIN],
                max_tokens=8,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA},
                },
                timeout=DEADLINE,
            )
    finally:
        sdk.close()
    assert "response_format" in str(refused.value.body)


# --- (c) the chat's forced function call -------------------------------------------------


def test_a_forced_function_call_returns_arguments_that_fit_the_tool(llm):
    """llama.cpp turns the tool's parameters into a grammar; our client reads the call's
    arguments. The chat parser's own model of them validates them."""
    completion = llm.complete(
        [
            ChatMessage("system", "Turn the shopper's message into shopping filters."),
            ChatMessage("user", "a gift for a friend under $40"),
        ],
        tool=FILTER_TOOL,
    )
    LLMFilters.model_validate(json.loads(completion.text))


def test_a_small_tool_is_called_with_its_required_arguments(llm):
    tool = Tool(
        name="pick",
        description="Pick the cheaper product.",
        parameters={
            "type": "object",
            "properties": {"product_id": {"type": "string", "enum": ["P1", "P2"]}},
            "required": ["product_id"],
        },
    )
    arguments = json.loads(llm.complete(EXPLAIN, tool=tool).text)
    assert arguments["product_id"] in ("P1", "P2")


def test_the_chat_understands_a_message_through_the_real_function_call(
    llm_server, tmp_path, database_url, shop
):
    # The default answer length: the call's arguments must fit in it.
    # The chat's budget as long as the model needs: this test is about the function call.
    # One attempt's wording in the model's own words (the facts grammar's retry is tested
    # in test_real_server_jobs): the suite's time.
    with app_with_llm(
        llm_server,
        tmp_path,
        database_url,
        chat_top_n=2,
        chat_reply_budget_seconds=2 * DEADLINE,
        llm_grammar="shape",
    ) as (client, _):
        response = client.post("/chat", json={"message": "a gift for a friend under $40"})
    assert response.status_code == 200
    body = response.json()
    assert body["parser"] == "llm", body  # the call's arguments parsed and validated
    assert body["reply_source"] in ("llm", "template")
    if body["reply_source"] == "template":
        # The model's filters may match nothing: then there is nothing to write about.
        assert body["reply_fallback_reason"].startswith((*MODEL_FAILURES, "no_items")), body
    # Whatever filters the model chose were validated against the catalog before use.
    assert "Spaceships" not in json.dumps(body["filters"])


# --- (b) GET /recommend: the evidence check decides what ships ---------------------------


def test_recommend_ships_checked_llm_text_or_the_template_with_a_reason(
    llm_server, tmp_path, database_url, shop
):
    alice = shop.users["alice"].id
    params = {"top_n": 2, "algorithm": "weighted", "explain": "wait"}
    # Short answers keep the suite's time in bounds: the model writes a few tokens per second
    # under a grammar on a busy machine (the bench measures the default length). Its own
    # wording on both attempts: the default grammar's retry is tested in test_real_server_jobs.
    with app_with_llm(
        llm_server, tmp_path, database_url, llm_max_tokens=64, llm_grammar="shape"
    ) as (client, _):
        response = client.get(f"/recommend/{alice}", params=params)
        assert response.status_code == 200
        body = response.json()
        calls = metric(client.get("/metrics").text, "shopwise_llm_calls_total", outcome="ok")
        stats = client.get("/explanations/stats").json()
        if body["explanation_source"] == "llm":
            # Checked LLM text is cached for exactly this list: no model call the second time.
            again = client.get(f"/recommend/{alice}", params=params).json()
            assert again["llm_explanation"] == body["llm_explanation"]
            after = client.get("/metrics").text
            assert metric(after, "shopwise_llm_calls_total", outcome="ok") == calls
    # Every answer was checked: one, and one retry stating the failure when it failed.
    assert stats["checks_passed"] + stats["checks_failed"] == calls
    if body["explanation_source"] == "llm":
        assert body["fallback_reason"] is None
        assert stats["checks_passed"] == 1 and calls in (1, 2)
    else:
        assert body["fallback_reason"].startswith(MODEL_FAILURES), body
        assert (stats["checks_passed"], calls) == (0, 2)
        assert stats["fallbacks_by_reason"] == {body["fallback_reason"]: 1}
        assert body["llm_explanation"].startswith("Hi Alice Lee!")  # the template


# --- (d) the deadline --------------------------------------------------------------------


def test_a_short_llm_deadline_falls_back_to_the_template_in_bounded_time(
    llm_server, tmp_path, database_url, shop
):
    with app_with_llm(llm_server, tmp_path, database_url, llm_deadline_seconds=0.25) as (
        client,
        _,
    ):
        started = time.monotonic()
        body = client.get(
            f"/recommend/{shop.users['dave'].id}", params={"top_n": 3, "explain": "wait"}
        ).json()
        elapsed = time.monotonic() - started
    assert (body["explanation_source"], body["fallback_reason"]) == ("template", "llm_timeout")
    assert body["llm_explanation"].startswith("Hi Dave Kim!")
    # Bounded by the deadline, not by the model: generous slack for a loaded machine.
    assert elapsed < 0.25 + 5.0


# --- (e) the request's own grammar -----------------------------------------------------------

SHAPE_FAILURES = {"missing_product", "unknown_product", "duplicate_product", "bad_shape"}


def test_under_the_requests_grammar_the_model_writes_only_the_shape_the_check_accepts(
    llm_server, tmp_path, database_url, shop
):
    """Whatever the small model says, the grammar holds it to this list's products in
    order and their own fact ids: the check judges what it says, never its shape. (The
    ``facts`` grammar of the default's retry: test_real_server_jobs.)"""
    with app_with_llm(llm_server, tmp_path, database_url, llm_grammar="shape") as (
        client,
        components,
    ):
        request, explainer = components.recommender.explanation_job(
            shop.users["bob"].id, top_n=2, strategy="weighted"
        )
        outcome = explainer.inner.writer.write(request)
        # The stream asks with the same grammar: its final event is checked text or the
        # template with the model's failure.
        stream = client.get(
            f"/recommend/{shop.users['bob'].id}/explanation/stream",
            params={"top_n": 2, "algorithm": "weighted"},
        )
    assert outcome.answers and len(outcome.answers) == len(outcome.checks)
    for text, check in zip(outcome.answers, outcome.checks, strict=True):
        answer = json.loads(text)  # JSON: the grammar allows nothing else
        refs = [r["product_id"] for r in answer["reasons"]]
        assert refs == ["P1", "P2"][: len(request.items)]
        assert not SHAPE_FAILURES & set(check.reasons), check.reasons
    name, body = events(stream)[-1]
    assert name == "final"
    assert body["source"] == "llm" or body["fallback_reason"].startswith(MODEL_FAILURES), body
