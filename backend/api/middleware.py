"""ASGI middleware: request id, latency metrics, security headers, body size limit, rate limits.

Written as plain ASGI (not BaseHTTPMiddleware) so streaming responses pass through and the
cost per request stays a few microseconds.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.security import authenticate
from backend.observability.context import accept_request_id, request_id_var
from backend.observability.deadline import deadline_var
from backend.observability.metrics import Metrics
from backend.security.proxies import Network, client_address, parse_networks
from backend.security.rate_limit import (
    WINDOW_SECONDS,
    Bucket,
    login_failed,
    login_locked,
    take,
)
from backend.services.auth import AuthError

log = logging.getLogger("shopwise.access")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The API serves JSON and SVG only; the interactive docs need their own scripts and styles.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")
INTERNAL_ERROR = "internal error; quote the request id when reporting it"


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        deadline_seconds: float = float("inf"),
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.deadline_seconds = deadline_seconds  # the request's budget (observability.deadline)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = accept_request_id(_header(headers, b"x-request-id"))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        deadline_token = deadline_var.set(started + self.deadline_seconds)
        status = 500
        path: str = scope.get("path", "")

        declared = _header(headers, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _too_large(send, request_id, self.max_body_bytes)
            request_id_var.reset(token)
            deadline_var.reset(deadline_token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        started_response = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                # The app's own time, so a client can tell it from the time spent before
                # the app saw the request (queued in the event loop or the kernel).
                app_ms = (time.perf_counter() - started) * 1000
                extra = [
                    (b"x-request-id", request_id.encode()),
                    (b"server-timing", b"app;dur=%.1f" % app_ms),
                    *SECURITY_HEADERS,
                ]
                if not path.startswith(DOCS_PATHS):
                    extra.append(API_CSP)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            status = 413
            await _too_large(send, request_id, self.max_body_bytes)
        except Exception:
            # A bug, not a client error: the client still gets JSON with the request id (to
            # quote to us) and the security headers. Starlette's outer error middleware logs
            # the traceback and, as a test client, re-raises it; it sends nothing itself once
            # a response has started.
            if not started_response:
                await send_json(send, 500, request_id, {"detail": INTERNAL_ERROR})
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.http_latency.labels(method, template, str(status)).observe(elapsed)
            log.info(
                "%s %s %s %.1fms",
                method,
                template,
                status,
                elapsed * 1000,
                extra={"status": status, "duration_ms": round(elapsed * 1000, 2)},
            )
            request_id_var.reset(token)
            deadline_var.reset(deadline_token)


class BodyTooLarge(HTTPException):
    """Raised while reading a streamed body; FastAPI passes HTTPExceptions through as-is."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes")


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


async def _too_large(send: Send, request_id: str, limit: int) -> None:
    await send_json(send, 413, request_id, {"detail": f"request body larger than {limit} bytes"})


async def send_json(
    send: Send,
    status: int,
    request_id: str,
    body: dict[str, Any],
    headers: Sequence[tuple[str, str]] = (),
    *,
    add_context: bool = True,
) -> None:
    """A whole JSON response sent from middleware. ``add_context``: also the request id and
    security headers, when sending past ``RequestContextMiddleware`` (which adds them)."""
    payload = json.dumps({**body, "request_id": request_id}).encode()
    context = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS, API_CSP]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(context if add_context else []),
                *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RateLimitMiddleware:
    """Counts every request in its caller's buckets before the app sees it.

    Runs before routing and body parsing, so unknown routes, malformed bodies and failed
    authentication are counted like everything else. Buckets: a valid API key (or staff
    token) has its own and is not limited per address, so one storefront's servers never
    starve each other; a shopper token has its own and its address's; anonymous callers and
    failed authentication count against the client address (``security.proxies``), failures
    in a small bucket of their own. With auth off (the loopback demo) a local caller is not
    limited. The caller identified here is left in the request state for ``authorize``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._networks: tuple[Network, ...] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        components = getattr(scope.get("app"), "state", None)
        components = getattr(components, "components", None)
        if scope["type"] != "http" or components is None:
            await self.app(scope, receive, send)
            return
        settings = components.settings
        if self._networks is None:
            self._networks = parse_networks(settings.trusted_proxies)
        headers = dict(scope.get("headers") or [])
        peer = scope["client"][0] if scope.get("client") else "unknown"
        ip = client_address(peer, _header(headers, b"x-forwarded-for"), self._networks)
        state = scope.setdefault("state", {})
        state["client_ip"] = ip
        limiter = components.rate_limiter
        per_ip = Bucket(f"ip:{ip}", settings.rate_limit_per_minute)
        buckets: list[Bucket] = []
        if components.auth.enabled:
            api_key = _header(headers, b"x-api-key")
            authorization = _header(headers, b"authorization")
            try:
                principal = authenticate(components.auth, api_key, authorization)
                state["identified"] = (principal, None)
            except AuthError as exc:
                principal = None
                state["identified"] = (None, exc)
                buckets.append(Bucket(f"authfail:{ip}", settings.auth_failures_per_minute))
            if principal is None:
                buckets.append(per_ip)
            elif principal.kind == "shopper":
                token = hashlib.sha256((authorization or "").encode()).hexdigest()[:32]
                buckets += [Bucket(f"shopper:{token}", settings.rate_limit_per_shopper_per_minute)]
                buckets.append(per_ip)
            else:  # a storefront key, an admin or editor
                who = principal.key_id or f"{principal.kind}:{principal.name}"
                limit = principal.rate_limit or settings.rate_limit_per_key_per_minute
                buckets.append(Bucket(f"key:{who}", limit))
        elif not _is_loopback(ip):
            buckets.append(per_ip)

        login = scope.get("method") == "POST" and scope.get("path") == "/auth/login"
        login_who: str | None = None
        if login:
            receive, username = await _peek_username(receive)
            login_who = f"{ip}:{username}"
        refusal = take(limiter, buckets)
        if refusal is None and login_who is not None:
            refusal = login_locked(limiter, login_who, settings.login_attempts_per_minute)
        if refusal is not None:
            await send_json(
                send,
                429,
                request_id_var.get() or "",
                {"detail": "too many requests; slow down and retry later"},
                refusal.headers(),
                add_context=False,
            )
            return

        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch if login_who else send)
        if login_who is not None and status == 401:
            login_failed(limiter, login_who, settings.login_attempts_per_minute)
            limiter.hit(f"authfail:{ip}", settings.auth_failures_per_minute, WINDOW_SECONDS)


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


async def _peek_username(receive: Receive) -> tuple[Receive, str]:
    """Read the (small) login body to learn the username, then hand it on unchanged."""
    messages: list[Message] = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    try:
        parsed = json.loads(body)
        username = parsed.get("username") if isinstance(parsed, dict) else None
    except ValueError:
        username = None
    name = username[:80] if isinstance(username, str) else ""

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay, name
