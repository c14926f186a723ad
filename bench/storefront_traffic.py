"""The storefront's traffic for the load generator: requests, closed and open loop, the bare app.

A bare FastAPI app with the same route shapes and nothing behind them is the ceiling the
storefront ratio is measured against (``bench.storefront_load``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Response
from pydantic import BaseModel

from bench.harness import (
    ACTIONS,
)

EVENT, RECOMMEND = "POST /events", "GET /recommend"


@dataclass
class Traffic:
    """The storefront's requests: events (some re-sent) and recommendations, same shoppers."""

    prefix: str
    shoppers: list[str]
    products: list[str]
    event_share: float
    retry_share: float
    rng: random.Random
    sent: list[dict[str, str]] = field(default_factory=list)

    def next(self) -> tuple[str, str, dict[str, str] | None]:
        """(kind, path, JSON body or None for a GET)."""
        if self.rng.random() >= self.event_share:
            return RECOMMEND, f"/recommend/{self.rng.choice(self.shoppers)}", None
        if self.sent and self.rng.random() < self.retry_share:
            return EVENT, "/events", self.rng.choice(self.sent)  # a retried delivery
        event = {
            "user_id": self.rng.choice(self.shoppers),
            "action": self.rng.choice(ACTIONS),
            "product_id": self.rng.choice(self.products),
            "event_id": f"{self.prefix}-{len(self.sent)}",
        }
        self.sent.append(event)
        return EVENT, "/events", event


@dataclass
class Phase:
    target: str
    loop: str
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    throttled: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    accepted_ids: set[str] = field(default_factory=set)
    sent_ids: set[str] = field(default_factory=set)
    stored: int | None = None
    rate: float | None = None  # open loop: the target arrival rate
    cpu_seconds: dict[str, float] | None = None  # the app's processes by role, over the phase
    worker: str | None = None  # what /health said of the event worker after the phase
    started: float = 0.0  # time.time() when the phase began (aligns the timeline with profiles)
    # Every answered request: (due, seconds after ``started`` it was due, kind, status, ms from
    # due to answer, ms the app said it spent (Server-Timing) or None)
    timeline: list[tuple[float, str, int, float, float | None]] = field(default_factory=list)
    # The client's own stalls (its event loop late by more than 10 ms): (seconds after start, ms)
    client_stalls: list[tuple[float, float]] = field(default_factory=list)
    # The client's own garbage collections of 2 ms or more: (seconds after start, gen, ms)
    client_gc: list[tuple[float, int, float]] = field(default_factory=list)

    def record(
        self,
        kind: str,
        event_id: str | None,
        status: int,
        ms: float,
        due: float = 0.0,
        app_ms: float | None = None,
    ) -> None:
        self.timeline.append((due, kind, status, ms, app_ms))
        if event_id is not None:
            self.sent_ids.add(event_id)
        if status == 429:
            self.throttled[kind] += 1
        elif 200 <= status < 300:
            self.latencies[kind].append(ms)
            if event_id is not None:
                self.accepted_ids.add(event_id)
        else:
            self.errors[f"{kind} {status}"] += 1

    @property
    def answered(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.throttled.values())

    @property
    def ok(self) -> int:
        return sum(len(v) for v in self.latencies.values())


async def _send(
    client: httpx.AsyncClient, phase: Phase, traffic: Traffic, started: float | None = None
) -> None:
    kind, path, body = traffic.next()
    t0 = time.perf_counter() if started is None else started
    try:
        if body is None:
            r = await client.get(path)
        else:
            r = await client.post("/events", json=body)
        phase.record(kind, body["event_id"] if body else None, r.status_code,
                     (time.perf_counter() - t0) * 1000, t0 - phase_zero(phase),
                     app_time(r.headers.get("server-timing")))  # fmt: skip
    except httpx.HTTPError as exc:
        if body is not None:
            phase.sent_ids.add(body["event_id"])
        phase.errors[f"{kind} {type(exc).__name__}"] += 1


def phase_zero(phase: Phase) -> float:
    """The phase's start on the perf_counter clock (``started`` is on the wall clock)."""
    return phase.started - _WALL_MINUS_PERF


_WALL_MINUS_PERF = time.time() - time.perf_counter()


def app_time(header: str | None) -> float | None:
    """The app's own time from ``Server-Timing: app;dur=12.3`` (ms), if it sent one."""
    if not header:
        return None
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            try:
                return float(params[4:])
            except ValueError:
                return None
    return None


async def _watch_stalls(phase: Phase, every: float = 0.005, late_ms: float = 10.0) -> None:
    """Records when the client's own event loop ran late: a latency that includes a client
    stall is the client's, not the server's."""
    zero = phase_zero(phase)
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(every)
        late = (time.perf_counter() - t0 - every) * 1000
        if late > late_ms:
            phase.client_stalls.append((t0 - zero, late))


def _gc_probe(phase: Phase) -> Callable[[str, dict[str, int]], None]:
    """A ``gc.callbacks`` entry that records the client's own collections of 2 ms or more."""
    zero = phase_zero(phase)
    began = [0.0]

    def probe(stage: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if stage == "start":
            began[0] = now
        elif (ms := (now - began[0]) * 1000) >= 2.0:
            phase.client_gc.append((began[0] - zero, info["generation"], ms))

    return probe


async def closed_loop(base: str, phase: Phase, traffic: Traffic, clients: int, secs: float) -> None:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        phase.started = started + _WALL_MINUS_PERF
        stop_at = started + secs

        async def one() -> None:
            while time.perf_counter() < stop_at:
                await _send(client, phase, traffic)

        await asyncio.gather(*(one() for _ in range(clients)))
        phase.seconds = time.perf_counter() - started


async def open_loop(
    base: str, phase: Phase, traffic: Traffic, rate: float, secs: float, rng: random.Random
) -> None:
    """Poisson arrivals at ``rate``/s; each request's latency starts at its scheduled time."""
    phase.rate = rate
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        phase.started = started + _WALL_MINUS_PERF
        watcher = asyncio.create_task(_watch_stalls(phase))
        gc_probe = _gc_probe(phase)
        gc.callbacks.append(gc_probe)
        due = started
        while True:
            due += rng.expovariate(rate)
            if due - started >= secs:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(client, phase, traffic, started=due)))
        _, pending = await asyncio.wait(tasks, timeout=30) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        watcher.cancel()
        gc.callbacks.remove(gc_probe)
        if pending:
            phase.errors["unfinished after 30 s"] += len(pending)
        phase.seconds = time.perf_counter() - started


# --- the bare baseline -----------------------------------------------------------------------


class BareEvent(BaseModel):
    user_id: uuid.UUID
    action: str
    product_id: uuid.UUID | None = None
    event_id: str | None = None


def bare_app() -> FastAPI:
    """The same route shapes with nothing behind them: events parsed and deduplicated in a
    dict, recommendations answered with a real response's bytes."""
    body = Path(os.environ["BENCH_BARE_JSON"]).read_bytes()
    seen: dict[str, str] = {}
    app = FastAPI()

    @app.post("/events", status_code=201)
    def events(event: BareEvent, response: Response) -> dict[str, Any]:
        key = event.event_id or uuid.uuid4().hex
        if key in seen:
            response.status_code = 200
        interaction = seen.setdefault(key, str(uuid.uuid4()))
        return {"interaction_id": interaction, "duplicate": response.status_code == 200,
                "created_at": datetime.now(UTC).isoformat()}  # fmt: skip

    @app.get("/recommend/{user_id}")
    def recommend(user_id: uuid.UUID) -> Response:
        return Response(content=body, media_type="application/json")

    @app.get("/health/ready")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    return app
