"""The chat UI's only door to the API: a small httpx client.

The page never builds URLs or parses HTTP errors itself; it gets plain dicts or one of two
exceptions: ``ApiUnavailable`` (nothing answered: show a friendly "back soon") and
``ApiError`` (the API said no: show its ``detail``). The base URL, the errors and the request
helper live in ``chat_ui.api``, shared with the admin dashboard's client.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from chat_ui.api import ApiError, ApiUnavailable, BaseClient, api_base_url, error_detail

__all__ = ["ApiError", "ApiUnavailable", "ShopwiseClient", "api_base_url"]


class ShopwiseClient(BaseClient):
    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers: dict[str, str] = {}
        key = api_key or os.environ.get("SHOPWISE_API_KEY")
        if key:
            headers["X-API-Key"] = key
        super().__init__(base_url, timeout=timeout, headers=headers, transport=transport)

    # -- endpoints --------------------------------------------------------------------------

    def service_info(self) -> dict[str, Any]:
        return self._request("GET", "/")

    def users(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self._request("GET", "/users", params={"limit": limit})["items"])

    def chat(
        self,
        *,
        message: str = "",
        session_id: str | None = None,
        user_id: str | None = None,
        remove_filter: dict[str, Any] | None = None,
        feedback: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"message": message}
        for name, value in (
            ("session_id", session_id),
            ("user_id", user_id),
            ("remove_filter", remove_filter),
            ("feedback", feedback),
        ):
            if value is not None:
                body[name] = value
        return self._request("POST", "/chat", json=body)

    def event(self, *, user_id: str, action: str, product_id: str) -> dict[str, Any]:
        body = {
            "user_id": user_id,
            "action": action,
            "product_id": product_id,
            "event_id": f"chat-ui-{uuid.uuid4()}",
        }
        return self._request("POST", "/events", json=body)

    def recommend(self, user_id: str, top_n: int = 4) -> dict[str, Any]:
        return self._request("GET", f"/recommend/{user_id}", params={"top_n": top_n})

    def stream_explanation(self, user_id: str) -> Iterator[tuple[str, str]]:
        """The streamed explanation as (kind, text): ``("delta", piece)`` while it is written,
        then ``("final", text)``, the text to keep (it replaces the pieces)."""
        path = f"/recommend/{user_id}/explanation/stream"
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, error_detail(response))
                event = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                        continue
                    if not line.startswith("data:") or event not in ("delta", "final"):
                        continue
                    try:
                        data = json.loads(line[5:].strip())
                    except ValueError:
                        continue
                    text = data.get("text") if isinstance(data, dict) else None
                    if isinstance(text, str):
                        yield event, text
        except httpx.TransportError as exc:
            raise ApiUnavailable(str(exc)) from exc

    def image_url(self, product: dict[str, Any]) -> str:
        path = product.get("image_url") or f"/images/products/{product['id']}.svg"
        return path if path.startswith("http") else f"{self.base_url}{path}"
