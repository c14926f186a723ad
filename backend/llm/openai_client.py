"""The OpenAI-compatible LLM client: the only module that imports ``openai``.

The SDK's own retries are off (``max_retries=0``); tenacity owns the policy here: exponential
backoff with jitter on 429, 5xx, timeouts and connection errors, ``Retry-After`` honoured, and
one total deadline per request that caps every wait and every attempt's timeout. A circuit
breaker stops calling an LLM that keeps failing, for a cool-down. Every SDK error leaves this
module as one of our ``LLMError`` types (``backend.llm.client``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
import openai
from tenacity import RetryCallState, Retrying, retry_if_exception

from backend.llm.circuit import CircuitBreaker, Clock
from backend.llm.client import (
    ChatMessage,
    CircuitStatus,
    Completion,
    LLMBadResponse,
    LLMCircuitOpen,
    LLMError,
    LLMRateLimited,
    LLMRejected,
    LLMRequestDeadline,
    LLMTimeout,
    LLMUnavailable,
    ResponseSchema,
    Tool,
)
from backend.observability import deadline as request_deadline
from backend.observability.dependencies import DependencyMonitor

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    deadline_seconds: float = 8.0
    max_attempts: int = 4
    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 4.0


class OpenAIChatClient:
    """Chat completions through the ``openai`` SDK against any OpenAI-compatible server."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 150,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        http_client: httpx.Client | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        rng: Callable[[], float] = random.random,
        monitor: DependencyMonitor | None = None,
        on_call: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self.monitor = monitor
        # Told each call's outcome: "ok" or the error's ``reason`` (the llm_calls metric).
        self.on_call = on_call
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.policy = policy or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(5, 30.0, clock)
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        # Servers that reject response_format get plain requests from then on, and servers
        # that reject tools get JSON mode.
        self._json_mode_supported = True
        self._tools_supported = True
        self._schema_supported = True  # response_format json_schema
        self._schema_confirmed = False  # a json_schema request has been answered once
        self._sdk = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,  # tenacity owns retries; the SDK's would multiply attempts
            timeout=self.policy.deadline_seconds,
            http_client=http_client,
        )
        # The SDK imports its resource modules on first use; pay that at start-up, not
        # inside the first request's deadline.
        _ = self._sdk.chat.completions

    def circuit(self) -> CircuitStatus:
        return self.breaker.status()

    def close(self) -> None:
        self._sdk.close()

    # -- public calls --

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_mode: bool = False,
        tool: Tool | None = None,
        schema: ResponseSchema | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        try:
            budget = self._budget()
            deadline = self._clock() + budget
            result = self._guarded(
                lambda: self._retrying(
                    deadline,
                    lambda: self._once(
                        messages, json_mode, deadline, tool, schema=schema, max_tokens=max_tokens
                    ),
                ),
                cut=budget < self.policy.deadline_seconds,
            )
        except LLMError as exc:
            self._count(exc.reason)
            raise
        self._count("ok")
        return result

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        schema: ResponseSchema | None = None,
    ) -> Iterator[str]:
        try:
            budget = self._budget()
            deadline = self._clock() + budget
            if not self.breaker.allow():
                raise LLMCircuitOpen("the LLM circuit is open")
        except LLMError as exc:
            self._count(exc.reason)
            raise
        try:
            # Retries cover opening the stream only: once text has gone out, a failure ends it.
            chunks = self._retrying(
                deadline, lambda: self._open_stream(messages, deadline, max_tokens, schema)
            )
            yield from self._deltas(chunks, deadline)
        except LLMError as exc:
            mapped = self._record(exc, cut=budget < self.policy.deadline_seconds)
            self._count(mapped.reason)
            if mapped is exc:
                raise
            raise mapped from exc
        except GeneratorExit:
            self.breaker.release()
            self._count("abandoned")  # the reader stopped early (client went away)
            raise
        self.breaker.record_success()
        self._count("ok")

    def _count(self, outcome: str) -> None:
        if self.on_call is not None:
            self.on_call(outcome)

    # -- the policy --

    def _budget(self) -> float:
        """The LLM's deadline, capped by what is left of the request's (when there is one)."""
        budget = request_deadline.bounded(self.policy.deadline_seconds)
        if budget <= 0:
            raise LLMRequestDeadline("no time left in the request for the LLM")
        return budget

    def _guarded(self, call: Callable[[], Completion], *, cut: bool = False) -> Completion:
        if not self.breaker.allow():
            raise LLMCircuitOpen("the LLM circuit is open")
        try:
            result = call()
        except LLMError as exc:
            mapped = self._record(exc, cut=cut)
            if mapped is exc:
                raise
            raise mapped from exc
        self.breaker.record_success()
        return result

    def _record(self, exc: LLMError, *, cut: bool = False) -> LLMError:
        """Book a failure; a timeout of a deadline the request had cut short becomes
        ``LLMRequestDeadline`` (the LLM may be fine). Returns the error to raise."""
        if cut and isinstance(exc, LLMTimeout):
            exc = LLMRequestDeadline("the request deadline ran out while waiting for the LLM")
        if exc.counts_for_circuit:
            self.breaker.record_failure()
            if self.monitor is not None:
                self.monitor.failure("llm", exc)
        else:
            self.breaker.release()
        return exc

    def _retrying(self, deadline: float, attempt: Callable[[], T]) -> T:
        def wait(state: RetryCallState) -> float:
            remaining = deadline - self._clock()
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, LLMRateLimited) and exc.retry_after is not None:
                return max(0.0, exc.retry_after)
            growth = 2.0 ** (state.attempt_number - 1)
            cap = min(self.policy.backoff_max_seconds, self.policy.backoff_base_seconds * growth)
            return min(cap * (0.5 + self._rng() / 2), max(remaining, 0.0))  # jittered

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.policy.max_attempts:
                return True
            # Give up rather than wait past the deadline (a long Retry-After included).
            return self._clock() + (state.upcoming_sleep or 0.0) >= deadline

        retrying = Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, LLMError) and e.retryable),
            wait=wait,
            stop=stop,
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda s: log.info(
                "LLM attempt %d failed (%s); retrying in %.2f s",
                s.attempt_number,
                type(s.outcome.exception()).__name__ if s.outcome else "?",
                s.upcoming_sleep,
            ),
        )
        return retrying(attempt)

    # -- one attempt --

    def _timeout(self, deadline: float) -> float:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise LLMTimeout("the LLM deadline passed")
        return remaining

    def _request(
        self,
        messages: Sequence[ChatMessage],
        json_mode: bool,
        tool: Tool | None = None,
        *,
        schema: ResponseSchema | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": self.temperature,
            "max_tokens": max_tokens or self.max_tokens,
        }
        if schema is not None and tool is None:
            if self._schema_supported:
                kwargs["response_format"] = schema.json_schema_format()
            elif self._json_mode_supported:
                kwargs["response_format"] = schema.json_object_format()
            return kwargs
        if tool is not None and self._tools_supported:
            kwargs["tools"] = [tool.spec()]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": tool.name}}
        elif (json_mode or tool is not None) and self._json_mode_supported:
            kwargs["response_format"] = {"type": "json_object"}  # also when tools are not
        return kwargs

    def _once(
        self,
        messages: Sequence[ChatMessage],
        json_mode: bool,
        deadline: float,
        tool: Tool | None = None,
        *,
        schema: ResponseSchema | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        kwargs = self._request(messages, json_mode, tool, schema=schema, max_tokens=max_tokens)

        def again() -> Completion:
            return self._once(
                messages, json_mode, deadline, tool, schema=schema, max_tokens=max_tokens
            )

        try:
            response = self._sdk.chat.completions.create(**kwargs, timeout=self._timeout(deadline))
        except openai.InternalServerError as exc:
            if _asks_json_schema(kwargs) and not self._schema_confirmed:
                # llama-cpp-python's server answers an unknown response_format with a 500, not
                # a 400. Before any json_schema request has worked, that is a rejection of the
                # format: the same request in JSON mode tells a real outage apart (it fails too).
                log.info(
                    "LLM server failed a json_schema request; asking for JSON mode from now on"
                )
                self._schema_supported = False
                return again()
            raise _mapped(exc) from exc
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            if _asks_json_schema(kwargs):
                # Servers without structured outputs answer 400, or 422 when they validate
                # the request (llama-cpp-python's server knows only json_object and text).
                log.info("LLM server rejected json_schema; asking for JSON mode from now on")
                self._schema_supported = False
                return again()
            if schema is not None and "response_format" in kwargs:
                log.info("LLM server rejected response_format; asking without it from now on")
                self._json_mode_supported = False
                return again()
            if isinstance(exc, openai.UnprocessableEntityError):
                raise _mapped(exc) from exc
            if "tools" in kwargs:
                # Some OpenAI-compatible servers have no tool calls: JSON mode instead.
                log.info("LLM server rejected tools; asking for JSON from now on")
                self._tools_supported = False
                return self._once(messages, True, deadline)
            if "response_format" not in kwargs:
                raise _mapped(exc) from exc
            # Some OpenAI-compatible servers reject JSON mode; the prompt asks for JSON anyway.
            log.info("LLM server rejected response_format; asking without it from now on")
            self._json_mode_supported = False
            return self._once(messages, False, deadline)
        except openai.OpenAIError as exc:
            raise _mapped(exc) from exc
        except (ValueError, TypeError) as exc:  # a body that is not JSON at all
            raise LLMBadResponse(f"unreadable LLM response: {type(exc).__name__}") from exc
        if _asks_json_schema(kwargs):
            self._schema_confirmed = True
        return _completion(response, self.model, tool if "tools" in kwargs else None)

    def _open_stream(
        self,
        messages: Sequence[ChatMessage],
        deadline: float,
        max_tokens: int | None = None,
        schema: ResponseSchema | None = None,
    ) -> Any:
        kwargs = self._request(messages, schema is not None, schema=schema, max_tokens=max_tokens)
        try:
            return self._sdk.chat.completions.create(
                **kwargs, stream=True, timeout=self._timeout(deadline)
            )
        except (
            openai.InternalServerError,
            openai.BadRequestError,
            openai.UnprocessableEntityError,
        ) as exc:
            if _asks_json_schema(kwargs) and not self._schema_confirmed:
                # As for a whole answer (``_once``): a server without json_schema (llama.cpp
                # answers 500, others 400/422) gets JSON mode with the schema from now on.
                log.info("LLM server refused a json_schema stream; asking for JSON mode")
                self._schema_supported = False
                return self._open_stream(messages, deadline, max_tokens, schema)
            raise _mapped(exc) from exc
        except openai.OpenAIError as exc:
            raise _mapped(exc) from exc

    def _deltas(self, chunks: Any, deadline: float) -> Iterator[str]:
        try:
            for chunk in chunks:
                if self._clock() > deadline:
                    raise LLMTimeout("the LLM deadline passed while streaming")
                choices = getattr(chunk, "choices", None) or []
                delta = getattr(choices[0], "delta", None) if choices else None
                text = getattr(delta, "content", None)
                if isinstance(text, str) and text:
                    yield text
        except openai.OpenAIError as exc:
            raise _mapped(exc) from exc
        except (httpx.HTTPError, ValueError, TypeError) as exc:
            raise LLMBadResponse(f"broken LLM stream: {type(exc).__name__}") from exc
        finally:
            close = getattr(chunks, "close", None)
            if callable(close):
                close()


def _asks_json_schema(kwargs: dict[str, Any]) -> bool:
    response_format = kwargs.get("response_format") or {}
    return bool(response_format.get("type") == "json_schema")


def _completion(response: object, model: str, tool: Tool | None = None) -> Completion:
    """Validate the parts we use: the SDK does not validate bodies, and servers vary."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise LLMBadResponse("LLM response has no choices")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if tool is not None:
        content = _tool_arguments(message, tool) or content  # some servers answer in text
    if not isinstance(content, str) or not content.strip():
        raise LLMBadResponse("LLM response has no text content")
    used_model = getattr(response, "model", None)
    tokens = getattr(getattr(response, "usage", None), "completion_tokens", None)
    return Completion(
        text=content,
        model=used_model if isinstance(used_model, str) and used_model else model,
        finish_reason=getattr(choices[0], "finish_reason", None),
        tokens=tokens if isinstance(tokens, int) else None,
    )


def _tool_arguments(message: object, tool: Tool) -> str | None:
    """The JSON arguments of the model's call to ``tool`` (None when it made none)."""
    for call in getattr(message, "tool_calls", None) or ():
        function = getattr(call, "function", None)
        if getattr(function, "name", None) == tool.name:
            arguments = getattr(function, "arguments", None)
            return arguments if isinstance(arguments, str) else None
    return None


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _mapped(exc: openai.OpenAIError) -> LLMError:
    """Our error for an SDK error; the caller raises it ``from`` the original."""
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeout("the LLM request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return LLMUnavailable(f"could not reach the LLM: {exc}")
    if isinstance(exc, openai.RateLimitError):
        return LLMRateLimited("the LLM is rate limiting us", _retry_after(exc.response))
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return LLMUnavailable(f"the LLM failed with HTTP {exc.status_code}")
        return LLMRejected(f"the LLM refused the request with HTTP {exc.status_code}")
    if isinstance(exc, openai.APIResponseValidationError):
        return LLMBadResponse("the LLM response did not validate")
    return LLMBadResponse(f"LLM error: {type(exc).__name__}")


def build_client(
    *,
    api_key: str,
    model: str,
    base_url: str | None,
    temperature: float,
    max_tokens: int,
    deadline_seconds: float,
    max_attempts: int,
    circuit_failures: int,
    circuit_cooldown_seconds: float,
    http_client: httpx.Client | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    monitor: DependencyMonitor | None = None,
    on_call: Callable[[str], None] | None = None,
) -> OpenAIChatClient:
    """The factory ``wiring`` calls; keyword-only so settings map one to one."""
    return OpenAIChatClient(
        api_key=api_key,
        model=model,
        base_url=base_url,
        temperature=temperature,
        max_tokens=max_tokens,
        policy=RetryPolicy(deadline_seconds=deadline_seconds, max_attempts=max_attempts),
        breaker=CircuitBreaker(circuit_failures, circuit_cooldown_seconds, clock),
        http_client=http_client,
        clock=clock,
        sleep=sleep,
        monitor=monitor,
        on_call=on_call,
    )
