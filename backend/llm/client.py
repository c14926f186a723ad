"""What the rest of the code sees of an LLM: messages, completions, our errors and the
``LLMClient`` protocol. The one implementation that talks to a server is
``backend.llm.openai_client`` (the only module that imports ``openai``); tests pass a fake of
the same shape.

Every failure leaving a client is one of the ``LLMError`` types below, so callers catch one
family in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]
CircuitState = Literal["closed", "open", "half_open"]


# --- our errors -------------------------------------------------------------------------


class LLMError(Exception):
    """Base of every failure leaving the client; ``reason`` is a stable machine-readable code."""

    reason = "llm_error"
    retryable = False
    # Whether the failure says something about the LLM's health (counts toward the circuit).
    counts_for_circuit = True


class LLMUnavailable(LLMError):
    """Connection refused, 5xx, or the deadline ran out: the LLM could not answer."""

    reason = "llm_unavailable"
    retryable = True


class LLMTimeout(LLMUnavailable):
    reason = "llm_timeout"


class _NotTheLLMsHealth:
    """A failure that says nothing about the LLM's health: never retried, never counted
    toward the circuit."""

    retryable = False
    counts_for_circuit = False


class LLMRequestDeadline(_NotTheLLMsHealth, LLMTimeout):
    """The request's own budget ran out (slow database, long queue), not the LLM's."""

    reason = "request_deadline"


class LLMRateLimited(LLMUnavailable):
    """429. ``retry_after`` is the server's wish in seconds, when it said one."""

    reason = "llm_rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMCircuitOpen(_NotTheLLMsHealth, LLMUnavailable):
    """The breaker is open: we did not call the LLM at all."""

    reason = "circuit_open"


class LLMBadResponse(LLMError):
    """The server answered 200 with something that is not a usable chat completion."""

    reason = "llm_bad_response"


class LLMRejected(_NotTheLLMsHealth, LLMError):
    """A 4xx other than 429 (bad key, unknown model, bad request): retrying cannot help."""

    reason = "llm_rejected"


# --- data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model must call: its arguments (JSON text) are the completion's text.
    Servers without tool calls get JSON mode instead (the prompt carries the schema too)."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema

    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


@dataclass(frozen=True, slots=True)
class ResponseSchema:
    """A JSON schema the answer must follow: sent as ``json_schema`` (strict) where the server
    takes it, else as JSON mode carrying the schema (llama-cpp-python's server reads
    ``{"type": "json_object", "schema": ...}``), else not at all (the prompt asks anyway)."""

    name: str
    schema: Mapping[str, Any]
    # A tighter schema for this one request, for servers that enforce JSON mode's schema by
    # grammar (llama.cpp): keywords OpenAI's strict mode refuses (prefixItems, maxLength) are
    # fine there, and a small model cannot write outside them.
    grammar: Mapping[str, Any] | None = None

    def json_object_format(self) -> dict[str, Any]:
        return {"type": "json_object", "schema": dict(self.grammar or self.schema)}

    def json_schema_format(self) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": dict(self.schema), "strict": True},
        }


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    finish_reason: str | None = None
    tokens: int | None = None  # completion tokens, when the server reports its usage


@dataclass(frozen=True, slots=True)
class CircuitStatus:
    state: CircuitState
    consecutive_failures: int
    retry_in_seconds: float = 0.0


class LLMClient(Protocol):
    """What the explainer needs from an LLM; tests pass a fake with the same shape."""

    model: str

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_mode: bool = False,
        tool: Tool | None = None,
        schema: ResponseSchema | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """One chat completion (with ``tool``: the arguments of that forced function call;
        with ``schema``: an answer following it where the server can; ``max_tokens``: this
        answer's budget instead of the client's default); raises ``LLMError``."""
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        schema: ResponseSchema | None = None,
    ) -> Iterator[str]:
        """Text deltas as they arrive; raises ``LLMError`` (also mid-stream). ``schema``: as
        for ``complete``."""
        ...

    def circuit(self) -> CircuitStatus: ...
