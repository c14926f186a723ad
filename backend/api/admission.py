"""Admission control: past its in-flight limit a process answers 503 at once.

Without it an overloaded process accepts everything and queues it (in the thread pool, the
database pool, the event loop), so every caller waits seconds and many time out after their
work was done anyway. Refusing up front keeps the latency of what is admitted low and tells
callers to come back (``Retry-After``); a refused request never reaches a route, so nothing
of it is stored and a retry with the same ``event_id`` stores the event once.

Health, readiness and metrics are never refused: operators must see the overload.
"""

from __future__ import annotations

from collections import deque

import anyio
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.middleware import send_json
from backend.observability.context import request_id_var
from backend.observability.load import RequestLoad

NEVER_SHED = frozenset({"/health", "/health/ready", "/metrics"})
OVERLOADED = "the service is at capacity; retry after the time in Retry-After"
RETRY_AFTER_SECONDS = 1


class AdmissionMiddleware:
    """At most ``max_in_flight`` requests inside the app at once; a request that finds them
    all taken waits up to ``wait_seconds`` for one to free (first come, first served), then
    gets a 503. Sits inside ``RequestContextMiddleware`` so the 503 carries the request id
    and security headers, and before the rate limiter so a refusal costs no Redis call."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        wait_seconds: float,
        shed: Counter,
        load: RequestLoad | None = None,
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.wait_seconds = wait_seconds
        self.shed = shed
        # Also counts the admitted requests for background threads (``RequestLoad``).
        self.load = load or RequestLoad()
        self._in_flight = 0
        self._waiters: deque[anyio.Event] = deque()  # one per waiting request, oldest first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        if not await self._enter():
            self.shed.inc()
            await send_json(
                send,
                503,
                request_id_var.get() or "",
                {"detail": OVERLOADED},
                [("Retry-After", str(RETRY_AFTER_SECONDS))],
                add_context=False,
            )
            return
        self.load.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.load.leave()
            self._leave()

    async def _enter(self) -> bool:
        if self._in_flight < self.max_in_flight and not self._waiters:
            self._in_flight += 1
            return True
        if self.wait_seconds <= 0:
            return False
        ticket = anyio.Event()
        self._waiters.append(ticket)
        try:
            with anyio.move_on_after(self.wait_seconds):
                await ticket.wait()
        except BaseException:  # the caller went away while waiting
            if ticket.is_set():
                self._leave()  # a slot was handed to us: pass it on
            else:
                self._waiters.remove(ticket)
            raise
        if ticket.is_set():
            return True  # ``_leave`` handed its slot over; the count stays the same
        self._waiters.remove(ticket)
        return False

    def _leave(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._in_flight -= 1
