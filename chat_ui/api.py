"""What every UI client of the API shares: the base URL, the two errors, one request helper.

A page never builds URLs or parses HTTP errors itself; it gets plain dicts or one of two
exceptions: ``ApiUnavailable`` (nothing answered: show a friendly "back soon") and
``ApiError`` (the API said no: show its ``detail``). The base URL comes from
``SHOPWISE_API_URL`` (or ``CHAT_API_URL``, the older name the API's settings no longer have, still
read so an existing deployment keeps working), default the local API.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"


def api_base_url() -> str:
    url = os.environ.get("SHOPWISE_API_URL") or os.environ.get("CHAT_API_URL") or DEFAULT_API_URL
    return url.rstrip("/")


class ApiUnavailable(RuntimeError):
    """The API did not answer (down, refused, timed out)."""


class ApiError(RuntimeError):
    """The API answered with an error; ``detail`` is its message for people."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class BaseClient:
    """An httpx client on the API's base URL whose ``_request`` returns JSON or raises ours."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or api_base_url()).rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=headers or {}, transport=transport
        )

    def _request(
        self, method: str, path: str, *, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> Any:
        """JSON of a 2xx answer (or of a status in ``accept``, e.g. a 503 readiness report)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnavailable(
                f"{self.base_url} is not answering ({type(exc).__name__})"
            ) from exc
        if response.status_code in accept:
            return response.json()
        if response.status_code >= 500:
            raise ApiUnavailable(f"the API failed with HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ApiError(response.status_code, error_detail(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors: say the first one
        first = detail[0] if detail else {}
        return str(first.get("msg", detail)) if isinstance(first, dict) else str(first)
    return str(detail) if detail else response.reason_phrase
