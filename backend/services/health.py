"""Component health: each external system reports ok / degraded / down with a detail."""

from __future__ import annotations

import time
from typing import Literal, Protocol

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from backend.observability.dependencies import DependencyMonitor
from backend.recommender.catalog import SnapshotManager
from backend.services.cache import Cache
from backend.services.events import StreamStatus

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


def check_health(
    *,
    db: Engine,
    snapshots: SnapshotManager,
    cache: Cache,
    llm_mode: str,
    events: StatusSource | None = None,
    worker: StatusSource | None = None,
    llm: ComponentHealth | None = None,
    vectors: StatusSource | None = None,
    monitor: DependencyMonitor | None = None,
    segments: StatusSource | None = None,
) -> HealthReport:
    components = {
        "database": _database(db),
        "index": _index(snapshots),
        "cache": _cache(cache),
        "llm": llm or ComponentHealth(status="ok", detail=llm_mode),
    }
    if vectors is not None:  # the vector index is part of the engine's index: one line
        found = _source(vectors)
        components["index"] = ComponentHealth(
            status=found.status if components["index"].status == "ok" else "degraded",
            detail=f"{components['index'].detail}; {found.detail}",
        )
    for name, source in (("events", events), ("worker", worker), ("segments", segments)):
        if source is not None:
            components[name] = _source(source)
    if monitor is not None:
        _recent_failures(components, monitor)
    statuses = {c.status for c in components.values()}
    overall: Status = "ok"
    if components["database"].status == "down":
        overall = "down"
    elif statuses != {"ok"}:
        overall = "degraded"
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
