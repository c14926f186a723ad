"""The chat page's httpx client on a mock transport: the explanation stream's events."""

from __future__ import annotations

import json

import httpx

from chat_ui.client import ShopwiseClient


def sse(*events: tuple[str, dict[str, object]]) -> bytes:
    return "".join(f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events).encode()


def test_the_stream_yields_checked_pieces_then_the_text_to_keep() -> None:
    body = sse(
        ("start", {"user_id": "u-1", "products": [{"product_id": "p", "name": "Lamp"}]}),
        ("delta", {"text": "Hi Alice!"}),
        ("delta", {"text": "\n- Lamp: bright."}),
        ("final", {"text": "Template text.", "source": "template", "verified": False}),
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/recommend/u-1/explanation/stream"
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = ShopwiseClient("http://api.test", transport=httpx.MockTransport(handler))
    assert list(client.stream_explanation("u-1")) == [
        ("delta", "Hi Alice!"),
        ("delta", "\n- Lamp: bright."),
        ("final", "Template text."),  # the start event's data is not text to show
    ]
