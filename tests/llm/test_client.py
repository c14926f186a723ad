"""The real OpenAI client's wire behaviour, with respx at the HTTP edge and an injected clock.

No test sleeps: the client's ``sleep`` advances a fake clock, so deadlines, Retry-After and
the circuit's cool-down are exercised in microseconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from backend.config import PROJECT_ROOT
from backend.llm.circuit import CircuitBreaker
from backend.llm.client import (
    ChatMessage,
    LLMBadResponse,
    LLMCircuitOpen,
    LLMRateLimited,
    LLMRejected,
    LLMTimeout,
    LLMUnavailable,
    Tool,
)
from backend.llm.explainer import LLMExplainer
from backend.llm.openai_client import OpenAIChatClient, RetryPolicy, _retry_after
from backend.llm.prompts import PromptLibrary
from tests.llm.fakes import REQUEST, good_answer, vocabulary

BASE = "http://llm.test/v1"
URL = f"{BASE}/chat/completions"
MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def completion(text: str, model: str = "test-model") -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }


def sse(*pieces: str) -> bytes:
    lines = []
    for piece in pieces:
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "test-model",
            "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
        }
        lines.append(f"data: {json.dumps(chunk)}\n\n")
    lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(
    clock: FakeClock, *, deadline: float = 8.0, attempts: int = 10, failures: int = 3
) -> OpenAIChatClient:
    return OpenAIChatClient(
        api_key="sk-test",
        model="test-model",
        base_url=BASE,
        policy=RetryPolicy(deadline_seconds=deadline, max_attempts=attempts),
        breaker=CircuitBreaker(failures, 30.0, clock),
        clock=clock,
        sleep=clock.sleep,
        rng=lambda: 0.5,
    )


@pytest.fixture
def client(clock: FakeClock) -> OpenAIChatClient:
    return make_client(clock)


def explainer_over(client: OpenAIChatClient) -> LLMExplainer:
    return LLMExplainer(
        client=client, prompts=PromptLibrary(PROJECT_ROOT / "prompts"), vocabulary=vocabulary
    )


@respx.mock
def test_success_sends_our_settings_and_returns_the_text(client):
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=completion("Hello!")))
    result = client.complete(MESSAGES, json_mode=True)
    assert result.text == "Hello!" and result.model == "test-model"
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "test-model"
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 150
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test"
    assert client._sdk.max_retries == 0  # tenacity owns retries
    assert client.circuit().state == "closed"


@respx.mock
def test_429_with_retry_after_waits_that_long_then_succeeds(client, clock):
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(
                429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "2"}
            ),
            httpx.Response(200, json=completion("ok")),
        ]
    )
    assert client.complete(MESSAGES).text == "ok"
    assert route.call_count == 2
    assert clock.sleeps == [2.0]


@respx.mock
def test_a_retry_after_beyond_the_deadline_gives_up_at_once(client, clock):
    route = respx.post(URL).mock(
        return_value=httpx.Response(429, json={}, headers={"Retry-After": "30"})
    )
    with pytest.raises(LLMRateLimited) as caught:
        client.complete(MESSAGES)
    assert caught.value.retry_after == 30.0
    assert route.call_count == 1 and clock.sleeps == []


@respx.mock
def test_500s_are_retried_with_growing_backoff_until_the_deadline(clock):
    client = make_client(clock, deadline=3.0)
    route = respx.post(URL).mock(return_value=httpx.Response(500, json={"error": {}}))
    with pytest.raises(LLMUnavailable) as caught:
        client.complete(MESSAGES)
    assert isinstance(caught.value.__cause__, Exception)  # raised from the SDK error
    assert route.call_count >= 3
    assert clock.sleeps == sorted(clock.sleeps)  # exponential: 0.19, 0.38, 0.75, ...
    assert sum(clock.sleeps) < 3.0  # never waits past the deadline


@respx.mock
def test_500s_until_the_deadline_fall_back_to_the_template(clock):
    respx.post(URL).mock(return_value=httpx.Response(503, json={}))
    explanation = explainer_over(make_client(clock, deadline=2.0)).explain(REQUEST)
    assert explanation.source == "template"
    assert explanation.fallback_reason == "llm_unavailable"
    assert explanation.text.startswith("Hi Alice Lee!")


@respx.mock
def test_timeouts_are_retried_then_fall_back(clock):
    route = respx.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    client = make_client(clock, attempts=3)
    with pytest.raises(LLMTimeout):
        client.complete(MESSAGES)
    assert route.call_count == 3
    explanation = explainer_over(make_client(clock, attempts=2)).explain(REQUEST)
    assert (explanation.source, explanation.fallback_reason) == ("template", "llm_timeout")


@respx.mock
def test_each_attempt_gets_only_the_time_left(client, clock):
    seen: list[float] = []

    def slow_then_ok(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        if len(seen) == 1:
            clock.now += 5.0  # the first attempt used 5 of the 8 seconds
            return httpx.Response(502, json={})
        return httpx.Response(200, json=completion("ok"))

    respx.post(URL).mock(side_effect=slow_then_ok)
    assert client.complete(MESSAGES).text == "ok"
    assert seen[0] == pytest.approx(8.0)
    assert seen[1] < 3.0


@respx.mock
def test_connection_errors_are_retried(client):
    route = respx.post(URL).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=completion("ok"))]
    )
    assert client.complete(MESSAGES).text == "ok"
    assert route.call_count == 2


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            200, content=b"<html>gateway</html>", headers={"content-type": "application/json"}
        ),
        httpx.Response(200, json={"unexpected": True}),
        httpx.Response(200, json={"choices": []}),
        httpx.Response(200, json=completion("   ")),
        httpx.Response(200, text="plain words", headers={"content-type": "text/plain"}),
    ],
    ids=["not-json", "no-choices-key", "empty-choices", "blank-content", "text-plain"],
)
@respx.mock
def test_malformed_bodies_are_bad_responses_not_retried(client, clock, response):
    route = respx.post(URL).mock(return_value=response)
    with pytest.raises(LLMBadResponse):
        client.complete(MESSAGES)
    assert route.call_count == 1


@respx.mock
def test_a_malformed_body_falls_back_to_the_template(client):
    respx.post(URL).mock(
        return_value=httpx.Response(
            200, content=b"{oops", headers={"content-type": "application/json"}
        )
    )
    explanation = explainer_over(client).explain(REQUEST)
    assert (explanation.source, explanation.fallback_reason) == ("template", "llm_bad_response")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@respx.mock
def test_other_4xx_are_not_retried_and_do_not_open_the_circuit(clock, status):
    client = make_client(clock, failures=1)
    route = respx.post(URL).mock(return_value=httpx.Response(status, json={"error": {}}))
    with pytest.raises(LLMRejected):
        client.complete(MESSAGES)
    assert route.call_count == 1
    assert client.circuit().state == "closed"


@respx.mock
def test_a_server_without_json_mode_is_asked_again_without_it(client):
    def handler(request: httpx.Request) -> httpx.Response:
        if "response_format" in json.loads(request.content):
            return httpx.Response(400, json={"error": {"message": "response_format unsupported"}})
        return httpx.Response(200, json=completion("{}"))

    route = respx.post(URL).mock(side_effect=handler)
    assert client.complete(MESSAGES, json_mode=True).text == "{}"
    assert client.complete(MESSAGES, json_mode=True).text == "{}"
    assert route.call_count == 3  # rejected once, then never asked with it again


FILTERS = Tool(
    name="set_filters",
    description="Shopping filters",
    parameters={"type": "object", "properties": {"max_price": {"type": "number"}}},
)


def tool_call(arguments: str, name: str = "set_filters") -> dict[str, object]:
    body = completion("")
    body["choices"][0]["message"] = {  # type: ignore[index]
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }
    body["choices"][0]["finish_reason"] = "tool_calls"  # type: ignore[index]
    return body


@respx.mock
def test_a_tool_is_forced_and_its_arguments_are_the_text(client):
    route = respx.post(URL).mock(
        return_value=httpx.Response(200, json=tool_call('{"max_price": 50}'))
    )
    result = client.complete(MESSAGES, json_mode=True, tool=FILTERS)
    assert json.loads(result.text) == {"max_price": 50}
    sent = json.loads(route.calls.last.request.content)
    assert sent["tools"] == [FILTERS.spec()]
    assert sent["tools"][0]["function"]["parameters"] == FILTERS.parameters
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "set_filters"}}
    assert "response_format" not in sent  # the tool's schema says it all


@respx.mock
def test_a_call_to_another_function_or_none_at_all_is_a_bad_response(client):
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, json=tool_call("{}", name="delete_everything")),
            httpx.Response(200, json=completion('{"max_price": 9}')),  # answered in text
        ]
    )
    with pytest.raises(LLMBadResponse):
        client.complete(MESSAGES, tool=FILTERS)
    assert client.complete(MESSAGES, tool=FILTERS).text == '{"max_price": 9}'


@respx.mock
def test_a_server_without_tools_is_asked_for_json_instead(client):
    def handler(request: httpx.Request) -> httpx.Response:
        if "tools" in json.loads(request.content):
            return httpx.Response(400, json={"error": {"message": "tools are not supported"}})
        return httpx.Response(200, json=completion('{"max_price": 20}'))

    route = respx.post(URL).mock(side_effect=handler)
    assert client.complete(MESSAGES, tool=FILTERS).text == '{"max_price": 20}'
    assert client.complete(MESSAGES, tool=FILTERS).text == '{"max_price": 20}'
    assert route.call_count == 3  # rejected once, then JSON mode only
    last = json.loads(route.calls.last.request.content)
    assert last["response_format"] == {"type": "json_object"} and "tools" not in last


@respx.mock
def test_the_circuit_opens_after_repeated_failures_and_closes_after_the_cooldown(clock):
    client = make_client(clock, attempts=1, failures=3)
    route = respx.post(URL).mock(return_value=httpx.Response(500, json={}))
    for _ in range(3):
        with pytest.raises(LLMUnavailable):
            client.complete(MESSAGES)
    status = client.circuit()
    assert status.state == "open" and status.retry_in_seconds == 30.0
    with pytest.raises(LLMCircuitOpen):
        client.complete(MESSAGES)
    assert route.call_count == 3  # the open circuit did not call the LLM

    explanation = explainer_over(client).explain(REQUEST)
    assert (explanation.source, explanation.fallback_reason) == ("template", "circuit_open")

    clock.now += 29.0
    assert client.circuit().state == "open"
    clock.now += 1.0
    assert client.circuit().state == "half_open"
    route.mock(return_value=httpx.Response(200, json=completion("back")))
    assert client.complete(MESSAGES).text == "back"  # the trial call
    assert client.circuit().state == "closed"
    assert client.circuit().consecutive_failures == 0


@respx.mock
def test_a_failed_trial_call_opens_the_circuit_again(clock):
    client = make_client(clock, attempts=1, failures=2)
    respx.post(URL).mock(return_value=httpx.Response(500, json={}))
    for _ in range(2):
        with pytest.raises(LLMUnavailable):
            client.complete(MESSAGES)
    clock.now += 30.0
    with pytest.raises(LLMUnavailable):
        client.complete(MESSAGES)  # the half-open trial fails
    assert client.circuit().state == "open"
    assert client.circuit().retry_in_seconds == 30.0


def test_half_open_lets_exactly_one_trial_through(clock):
    breaker = CircuitBreaker(1, 10.0, clock)
    breaker.record_failure()
    clock.now += 10.0
    assert breaker.allow() is True
    assert breaker.allow() is False  # a second caller waits for the trial's outcome
    breaker.record_success()
    assert breaker.allow() is True


@respx.mock
def test_streaming_yields_text_deltas(client):
    respx.post(URL).mock(
        return_value=httpx.Response(
            200, content=sse("Hel", "lo", " there"), headers={"content-type": "text/event-stream"}
        )
    )
    assert list(client.stream(MESSAGES)) == ["Hel", "lo", " there"]
    assert client.circuit().state == "closed"


@respx.mock
def test_streaming_retries_opening_the_stream_and_maps_errors(client, clock):
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(503, json={}),
            httpx.Response(200, content=sse("ok"), headers={"content-type": "text/event-stream"}),
        ]
    )
    assert list(client.stream(MESSAGES)) == ["ok"]
    assert route.call_count == 2
    route.mock(return_value=httpx.Response(401, json={}))
    with pytest.raises(LLMRejected):
        list(client.stream(MESSAGES))


@respx.mock
def test_a_stream_past_the_deadline_is_cut_off(client, clock):
    def chunks():
        yield sse("one")[: -len("data: [DONE]\n\n")]
        clock.now += 9.0
        yield sse("two")

    respx.post(URL).mock(
        return_value=httpx.Response(
            200, content=chunks(), headers={"content-type": "text/event-stream"}
        )
    )
    received = []
    with pytest.raises(LLMTimeout):
        for delta in client.stream(MESSAGES):
            received.append(delta)
    assert received == ["one"]


def test_retry_after_forms():
    def response(**headers: str) -> httpx.Response:
        return httpx.Response(429, headers=headers)

    assert _retry_after(response(**{"retry-after": "3"})) == 3.0
    assert _retry_after(response(**{"retry-after-ms": "250"})) == 0.25
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 < (_retry_after(response(**{"retry-after": later})) or 0) <= 60
    assert _retry_after(response(**{"retry-after": "soon"})) is None
    assert _retry_after(response()) is None


@respx.mock
def test_a_good_answer_through_the_real_client_ships_as_llm(client):
    respx.post(URL).mock(return_value=httpx.Response(200, json=completion(good_answer())))
    explanation = explainer_over(client).explain(REQUEST)
    assert (explanation.source, explanation.fallback_reason) == ("llm", None)
    assert "Studio Headphones" in explanation.text
