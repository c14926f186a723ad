"""Component health: each external system reports ok / degraded / down with a detail."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from backend.infra.cache import Cache
from backend.infra.stream import StreamStatus
from backend.observability.dependencies import DependencyMonitor
from backend.observability.metrics import Metrics
from backend.recommender.snapshot import SnapshotManager

log = logging.getLogger(__name__)

Status = Literal["ok", "degraded", "down"]

# Which health component shows the failures a dependency reported to the monitor.
MONITORED = {"database": "database", "vectors": "index", "llm": "llm"}


class StatusSource(Protocol):
    """The event stream and the worker monitor both answer ``status()``."""

    def status(self) -> StreamStatus: ...


class ComponentHealth(BaseModel):
    status: Status
    detail: str


class HealthReport(BaseModel):
    status: Status
    components: dict[str, ComponentHealth]


class HealthCheck:
    """Every component's status in one report, for /health, /health/ready and /metrics."""

    def __init__(
        self,
        *,
        db: Engine,
        snapshots: SnapshotManager,
        cache: Cache,
        llm: Callable[[], ComponentHealth],
        events: StatusSource,
        worker: StatusSource,
        vectors: StatusSource,
        segments: StatusSource,
        metrics: Metrics,
        explanations: StatusSource | None = None,
    ) -> None:
        self.db = db
        self.snapshots = snapshots
        self.cache = cache
        self.llm = llm
        self.sources = {"events": events, "worker": worker, "segments": segments}
        if explanations is not None:  # the explanation queue, when an LLM writes them
            self.sources["explanations"] = explanations
        self.vectors = vectors
        self.metrics = metrics

    def report(self, warmup: Warmup | None = None) -> HealthReport:
        """The report; ``shopwise_component_up`` is set from it as a side effect, so a
        scrape of /metrics is as current as the last health check."""
        components = {
            "database": _database(self.db),
            "index": _index(self.snapshots),
            "cache": _cache(self.cache),
            "llm": self.llm(),
        }
        if warmup is not None:
            components["startup"] = warmup.health()
        found = _source(self.vectors)  # the vector index is part of the engine's index: one line
        components["index"] = ComponentHealth(
            status=found.status if components["index"].status == "ok" else "degraded",
            detail=f"{components['index'].detail}; {found.detail}",
        )
        for name, source in self.sources.items():
            components[name] = _source(source)
        _recent_failures(components, self.metrics.dependencies)
        statuses = {c.status for c in components.values()}
        overall: Status = "ok"
        if components["database"].status == "down":
            overall = "down"
        elif statuses != {"ok"}:
            overall = "degraded"
        levels = {"ok": 1.0, "degraded": 0.5, "down": 0.0}
        for name, component in components.items():
            self.metrics.component_up.labels(name).set(levels[component.status])
        return HealthReport(status=overall, components=components)


def _recent_failures(components: dict[str, ComponentHealth], monitor: DependencyMonitor) -> None:
    """A dependency that failed a moment ago is degraded even if its probe answers now (a
    dropped connection the pool replaced, a statement cancelled by its timeout)."""
    for source, name in MONITORED.items():
        outage = monitor.current(source)
        if outage is None or name not in components:
            continue
        health = components[name]
        components[name] = ComponentHealth(
            status="degraded" if health.status == "ok" else health.status,
            detail=f"{health.detail}; {outage.failures} recent failure(s), last: {outage.detail}",
        )


def _database(db: Engine) -> ComponentHealth:
    started = time.perf_counter()
    try:
        with db.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means the database is unreachable
        return ComponentHealth(status="down", detail=f"{type(exc).__name__}")
    elapsed = (time.perf_counter() - started) * 1000
    return ComponentHealth(status="ok", detail=f"{db.url.get_backend_name()}, {elapsed:.1f} ms")


def _index(snapshots: SnapshotManager) -> ComponentHealth:
    snapshot = snapshots.loaded
    if snapshot is None:
        return ComponentHealth(status="degraded", detail="engine snapshot not built yet")
    return ComponentHealth(
        status="ok",
        detail=f"{len(snapshot)} products in memory, catalog version {snapshot.version}",
    )


def _cache(cache: Cache) -> ComponentHealth:
    status = cache.status()
    state: Status = "ok" if status.status == "ok" else "degraded"
    return ComponentHealth(status=state, detail=f"{status.backend}: {status.detail}".strip(": "))


def _source(source: StatusSource) -> ComponentHealth:
    try:
        status = source.status()
    except Exception as exc:  # a status probe must never break /health
        return ComponentHealth(
            status="degraded", detail=f"status unavailable ({type(exc).__name__})"
        )
    state: Status = "ok" if status.status == "ok" else "degraded"
    return ComponentHealth(status=state, detail=f"{status.backend}: {status.detail}")


class Warmup:
    """Loads what the first requests would otherwise pay for, in a background thread.

    Each step is a named loader (the engine snapshot, the embedding model, the collaborative
    models). Until every step has finished, ``/health/ready`` answers 503 "warming up" and
    names the steps still loading, so a load balancer sends no traffic to a cold process. A
    failed step counts as finished (the request path retries it and reports the failure the
    usual way), so one broken loader never holds readiness back for good. ``then`` runs once
    they all have, before the process says it is ready.
    """

    def __init__(
        self, steps: dict[str, Callable[[], object]], then: Callable[[], object] | None = None
    ) -> None:
        self._steps = dict(steps)
        self._then = then
        self._pending = list(self._steps)
        self._failed: dict[str, str] = {}
        self._timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="warm-start", daemon=True)

    def start(self) -> None:
        if not self._steps:
            self._done.set()
            return
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def health(self) -> ComponentHealth:
        with self._lock:
            pending, failed = list(self._pending), dict(self._failed)
            timings = dict(self._timings)
        if pending:
            return ComponentHealth(
                status="degraded", detail=f"warming up: {', '.join(pending)} still loading"
            )
        loaded = ", ".join(f"{n} {s:.1f} s" for n, s in timings.items() if n not in failed)
        if failed:
            errors = "; ".join(f"{n} failed ({e})" for n, e in failed.items())
            return ComponentHealth(status="degraded", detail=f"warm: {loaded or '-'}; {errors}")
        return ComponentHealth(status="ok", detail=f"warm: {loaded or 'nothing to load'}")

    def _run(self) -> None:
        for name, load in self._steps.items():
            started = time.perf_counter()
            try:
                load()
            except Exception as exc:  # the request path retries and reports it
                log.exception("warm start: loading the %s failed", name)
                with self._lock:
                    self._failed[name] = type(exc).__name__
            with self._lock:
                self._timings[name] = time.perf_counter() - started
                self._pending.remove(name)
        if self._then is not None:
            self._then()
        self._done.set()
        log.info("warm start done: %s", self.health().detail)
