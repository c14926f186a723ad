"""The grounded answer at the OpenAI HTTP edge (respx): json_schema where the server takes
it, JSON mode with the schema or plain text where it does not (remembered per client), a
``max_tokens`` sized to the answer, and an answer cut off at the cap retried with room."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from backend.llm.answer_grammar import answer_schema_for
from backend.llm.check import answer_schema
from backend.llm.client import LLMUnavailable, ResponseSchema
from backend.llm.writer import answer_max_tokens
from tests.llm.fakes import GOOD_REASONS, ITEMS, REQUEST, answer
from tests.llm.test_client import (
    MESSAGES,
    URL,
    FakeClock,
    completion,
    explainer_over,
    make_client,
    sse,
)

SCHEMA = ResponseSchema("grounded_answer", answer_schema())


def response_mode(client: object) -> str:
    """How a client asks for structured answers now (what it has learnt of the server)."""
    if getattr(client, "_schema_supported", False):
        return "json_schema"
    return "json_object" if getattr(client, "_json_mode_supported", False) else "text"


def body(route: respx.Route, call: int = -1) -> dict[str, object]:
    return json.loads(route.calls[call].request.content)


def cut_off(text: str) -> dict[str, object]:
    data = completion(text)
    data["choices"][0]["finish_reason"] = "length"  # type: ignore[index]
    return data


@respx.mock
def test_the_schema_is_sent_as_strict_json_schema_in_the_shape_llama_cpp_and_openai_take():
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=completion("{}")))
    client = make_client(FakeClock())
    client.complete(MESSAGES, schema=SCHEMA, max_tokens=900)
    sent = body(route)
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "grounded_answer", "schema": answer_schema(), "strict": True},
    }
    assert sent["max_tokens"] == 900
    assert response_mode(client) == "json_schema"


@pytest.mark.parametrize("status", [400, 422])  # 422: servers that validate the request
@respx.mock
def test_a_server_without_json_schema_gets_json_mode_with_the_schema_from_then_on(status):
    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["response_format"]["type"] == "json_schema":
            return httpx.Response(status, json={"error": {"message": "unknown type"}})
        return httpx.Response(200, json=completion("{}"))

    route = respx.post(URL).mock(side_effect=handler)
    client = make_client(FakeClock())
    client.complete(MESSAGES, schema=SCHEMA)
    client.complete(MESSAGES, schema=SCHEMA)
    assert route.call_count == 3  # rejected once, remembered
    assert body(route)["response_format"] == {"type": "json_object", "schema": answer_schema()}
    assert response_mode(client) == "json_object"


@respx.mock
def test_a_500_to_the_first_json_schema_request_is_a_rejection_of_the_format():
    """llama-cpp-python's server answers ``json_schema`` with HTTP 500, not 400 (seen against
    the real server in tests/llm/test_real_server_e2e.py): JSON mode with the schema after it,
    not retries of the same request until the deadline."""

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["response_format"]["type"] == "json_schema":
            return httpx.Response(500, json={"detail": "unknown response_format type"})
        return httpx.Response(200, json=completion("{}"))

    route = respx.post(URL).mock(side_effect=handler)
    client = make_client(FakeClock())
    client.complete(MESSAGES, schema=SCHEMA)
    client.complete(MESSAGES, schema=SCHEMA)
    assert route.call_count == 3  # one 500, then JSON mode for good
    assert body(route)["response_format"] == {"type": "json_object", "schema": answer_schema()}
    assert response_mode(client) == "json_object"


@respx.mock
def test_once_json_schema_has_worked_a_500_is_an_outage_not_a_format_change():
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, json=completion("{}")),
            *[httpx.Response(500, json={"error": {"message": "overloaded"}})] * 3,
        ]
    )
    client = make_client(FakeClock(), attempts=3)
    client.complete(MESSAGES, schema=SCHEMA)
    with pytest.raises(LLMUnavailable):
        client.complete(MESSAGES, schema=SCHEMA)
    assert route.call_count == 4  # retried as json_schema by the retry policy, never downgraded
    assert all(body(route, i)["response_format"]["type"] == "json_schema" for i in range(4))
    assert response_mode(client) == "json_schema"


@respx.mock
def test_a_server_without_any_response_format_gets_plain_requests():
    def handler(request: httpx.Request) -> httpx.Response:
        if "response_format" in json.loads(request.content):
            return httpx.Response(400, json={"error": {"message": "no response_format"}})
        return httpx.Response(200, json=completion("{}"))

    route = respx.post(URL).mock(side_effect=handler)
    client = make_client(FakeClock())
    client.complete(MESSAGES, schema=SCHEMA)
    client.complete(MESSAGES, schema=SCHEMA)
    assert route.call_count == 4  # json_schema, json_object, plain; then plain only
    assert "response_format" not in body(route)
    assert response_mode(client) == "text"


LONG_REASON = (
    "Since you bought the Studio Headphones, these wireless earbuds suit your love of audio, "
    "a great pick for you."
)


def long_answer(items: int) -> str:
    """An answer as long as the prompt allows: every reason near the word budget."""
    refs = [f"P{i + 1}" for i in range(items)]
    return answer({ref: (LONG_REASON, ["F1", "F3"]) if ref == "P1" else GOOD_REASONS[ref]
                   for ref in refs})  # fmt: skip


@respx.mock
def test_a_long_answer_fits_the_sized_budget_not_the_old_fixed_cap():
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=completion(long_answer(3))))
    explanation = explainer_over(make_client(FakeClock())).explain(REQUEST)
    assert explanation.source == "llm"
    sent = body(route)
    assert sent["max_tokens"] == answer_max_tokens(len(ITEMS), floor=150) > 150
    # A whole answer of 5 reasons at the word budget fits the budget for 5 with room
    # (counted generously: 1 token per 3 characters of JSON).
    assert len(long_answer(3)) / 3 * 5 / 3 < answer_max_tokens(5)


@respx.mock
def test_an_answer_cut_off_at_the_cap_is_asked_again_with_twice_the_room():
    text = long_answer(3)
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, json=cut_off(text[: len(text) // 2])),
            httpx.Response(200, json=completion(text)),
        ]
    )
    explainer = explainer_over(make_client(FakeClock()))
    explanation = explainer.explain(REQUEST)
    assert explanation.source == "llm"
    first, second = body(route, 0), body(route, 1)
    assert second["max_tokens"] == 2 * first["max_tokens"]  # type: ignore[operator]
    retry = second["messages"][-1]["content"]  # type: ignore[index]
    assert "cut off" in retry


@respx.mock
def test_a_streamed_explanation_gets_the_sized_budget_too():
    text = long_answer(3)
    pieces = [text[i : i + 40] for i in range(0, len(text), 40)]
    route = respx.post(URL).mock(
        return_value=httpx.Response(
            200, content=sse(*pieces), headers={"content-type": "text/event-stream"}
        )
    )
    events = list(explainer_over(make_client(FakeClock())).stream(REQUEST))
    final = events[-1]
    assert getattr(final, "verified", False), final
    assert body(route)["max_tokens"] == answer_max_tokens(len(ITEMS), floor=150)


@respx.mock
def test_json_mode_carries_the_requests_own_grammar_and_json_schema_the_strict_one():
    """The writer's schema for one request: OpenAI's strict mode gets the general schema (it
    refuses prefixItems and maxLength); a JSON-mode server (llama.cpp) gets the exact one."""
    schema = answer_schema_for(REQUEST.facts())

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["response_format"]["type"] == "json_schema":
            return httpx.Response(400, json={"error": {"message": "no structured outputs"}})
        return httpx.Response(200, json=completion("{}"))

    route = respx.post(URL).mock(side_effect=handler)
    make_client(FakeClock()).complete(MESSAGES, schema=schema)
    strict = body(route, 0)["response_format"]["json_schema"]["schema"]
    assert strict == answer_schema()
    sent = body(route, 1)["response_format"]
    assert sent["type"] == "json_object"
    reasons = sent["schema"]["properties"]["reasons"]["prefixItems"]
    assert [r["properties"]["product_id"]["const"] for r in reasons] == ["P1", "P2", "P3"]


@respx.mock
def test_a_stream_with_a_schema_falls_back_from_json_schema_to_the_grammar_once():
    """llama.cpp answers a json_schema stream with 500 as well: JSON mode with the request's
    grammar from then on, for streams and whole answers alike."""
    schema = answer_schema_for(REQUEST.facts())

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["response_format"]["type"] == "json_schema":
            return httpx.Response(500, json={"detail": "unknown response_format type"})
        return httpx.Response(200, content=sse("{}"), headers={"content-type": "text/event-stream"})

    route = respx.post(URL).mock(side_effect=handler)
    client = make_client(FakeClock())
    assert list(client.stream(MESSAGES, schema=schema)) == ["{}"]
    assert list(client.stream(MESSAGES, schema=schema)) == ["{}"]
    assert route.call_count == 3
    assert body(route, 2)["response_format"] == schema.json_object_format()
    assert response_mode(client) == "json_object"
