"""A small OpenAI-compatible chat server on 127.0.0.1, for end-to-end tests of the real SDK.

It answers ``POST /v1/chat/completions`` (plain and ``stream: true``) with a JSON explanation
built from the refs the prompt asks about, so the evidence check can pass; ``mode`` switches it
to a lying answer or to HTTP 500s. Runs uvicorn in a thread on a socket bound to a free port.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

Mode = Literal["good", "grounded", "lying", "error"]
_PRODUCT = re.compile(r"^\[(P\d+)\] .*$((?:\n[FU]\d+: .*)*)", re.M)
_PAST = re.compile(r"^(F\d+): you (.+? the .+)$", re.M)


class FakeOpenAI:
    def __init__(self) -> None:
        self.mode: Mode = "good"
        self.requests: list[dict[str, Any]] = []
        self.app = self._build()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", ws="none")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def answer(self, messages: list[dict[str, str]]) -> str:
        prompt = next((m["content"] for m in messages if m["role"] == "user"), "")
        found = re.search(r"each of: (.*)\.", prompt)
        refs = found.group(1).split(", ") if found else []
        if self.mode == "grounded":
            return self.grounded(prompt)
        reason = "Only $1 today, a real bargain!" if self.mode == "lying" else "A fine match."
        return json.dumps(
            {
                "intro": "Hi there, here are your picks.",
                "reasons": [{"product_id": ref, "reason": reason} for ref in refs],
            }
        )

    @staticmethod
    def grounded(prompt: str) -> str:
        """What a model following the prompt writes: each reason restates the product's
        first past-item fact (or says little), citing it."""
        reasons = []
        for ref, facts in _PRODUCT.findall(prompt):
            past = _PAST.search(facts)
            if past:
                reason = {"reason": f"Since you {past.group(2)}, this is a great match.",
                          "fact_ids": [past.group(1)]}  # fmt: skip
            else:
                reason = {"reason": "A fine match.", "fact_ids": []}
            reasons.append({"product_id": ref, **reason})
        return json.dumps({"intro": "Hi there, here are your picks.", "intro_fact_ids": [],
                           "reasons": reasons})  # fmt: skip

    def tool_arguments(self, messages: list[dict[str, str]]) -> str:
        """Filters from the shopper's message: "under $N" only, which is enough to see them
        arrive; with mode "lying", a category the catalog does not have."""
        message = messages[-1]["content"]
        price = re.search(r"under \$?(\d+)", message)
        filters: dict[str, object] = {"max_price": float(price.group(1))} if price else {}
        if self.mode == "lying":
            filters["categories"] = ["Spaceships"]
        return json.dumps(filters)

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions", response_model=None)
        async def chat(request: Request) -> JSONResponse | StreamingResponse:
            body = await request.json()
            self.requests.append(body)
            if self.mode == "error":
                return JSONResponse({"error": {"message": "overloaded"}}, status_code=500)
            if body.get("tools"):  # a forced function call (the chat's filter parser)
                name = body["tool_choice"]["function"]["name"]
                arguments = self.tool_arguments(body["messages"])
                return JSONResponse(_tool_call(body["model"], name, arguments))
            text = self.answer(body["messages"])
            if body.get("stream"):
                return StreamingResponse(
                    _chunks(text, body["model"]), media_type="text/event-stream"
                )
            return JSONResponse(
                {
                    "id": "chatcmpl-e2e",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )

        return app


def _tool_call(model: str, name: str, arguments: str) -> dict[str, object]:
    function = {"name": name, "arguments": arguments}
    call = {"id": "call_e2e", "type": "function", "function": function}
    return {
        "id": "chatcmpl-e2e",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
    }


def _chunks(text: str, model: str) -> Iterator[str]:
    for i in range(0, len(text), 9):
        chunk = {
            "id": "chatcmpl-e2e",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": {"content": text[i : i + 9]}, "finish_reason": None}],
        }
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"
