"""The app factory: builds every component once and injects it.

Nothing here runs at import time; ``create_app`` builds the components in the lifespan (or
takes ready ones from a test), hangs them on ``app.state`` for ``api/deps.py``, starts the
background threads and stops them again.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import OperationalError

from backend import __version__
from backend.api.admission import AdmissionMiddleware
from backend.api.errors import install_error_handlers
from backend.api.middleware import RateLimitMiddleware, RequestContextMiddleware
from backend.api.openapi import install_openapi
from backend.api.routes import (
    admin_prompts,
    admin_status,
    analytics,
    auth,
    chat,
    events,
    experiments,
    explanations,
    health,
    images,
    products,
    recommend,
    root,
    search,
    segments,
    users,
)
from backend.api.security import authorize
from backend.config import Settings, get_settings
from backend.infra.blas import one_thread_per_request
from backend.observability.load import RequestLoad
from backend.observability.metrics import Metrics
from backend.recommender.snapshot import SnapshotManager
from backend.services.health import Warmup
from backend.wiring import Components, build_components, warmup_steps

log = logging.getLogger(__name__)

# Allocations minus deallocations between young-generation collections once the warm start
# is frozen (CPython's default: 700). An uncached recommendation at 10,000 products holds
# more than 700 new containers at once (candidate lists, rows, pydantic models), so the
# collector ran every ~3 requests, each run walking the request's big young lists: 0.15 ms
# per request (load average 4 on 2 cores) to 0.7 ms (load 9) of collections timed by
# gc.callbacks in a served process, uncached GET /recommend at 10,000 products; at 10,000,
# 0-2 collections in 400 requests, and the request's CPU time 0.1-0.2 ms lower (blocks of
# users alternated between the two in one server). A request frees most of what it
# allocates by its end, so little garbage waits: cyclic garbage is collected every ~200
# requests instead of every ~3.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_heap() -> None:
    """After the warm start: what it loaded frozen out of the collector's way, and the
    young generation sized for a request's allocations (``YOUNG_GENERATION_THRESHOLD``)."""
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])


class SnapshotRefresher:
    """Background thread: rebuilds the engine snapshot when the catalog version changes."""

    def __init__(self, snapshots: SnapshotManager, interval_seconds: float) -> None:
        self._snapshots = snapshots
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot-refresh", daemon=True)

    def start(self) -> None:
        if self._interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self._snapshots.refresh_if_stale():
                    log.info("engine snapshot rebuilt after a catalog change")
            except OperationalError:  # database outage: the engine's hook logged it once
                pass
            except Exception:  # keep serving the old snapshot; the next tick retries
                log.exception("snapshot refresh failed")


def create_app(
    settings: Settings | None = None,
    components: Components | None = None,
    *,
    warm_in_background: bool | None = None,
) -> FastAPI:
    """``warm_in_background``: load the snapshot and models after start-up while
    /health/ready answers 503 (the default for a served app); otherwise before the first
    request (the default when the caller passes ready components, as tests do)."""
    config = components.settings if components else (settings or get_settings())
    background = components is None if warm_in_background is None else warm_in_background
    metrics = components.metrics if components else Metrics()
    load = components.load if components else RequestLoad()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        one_thread_per_request()  # requests run side by side, each on a thread of its own
        built = components or build_components(config, metrics=metrics, load=load)
        app.state.components = built
        # What the warm start loads (the snapshot, the models: ~460,000 objects at 10,000
        # products) lives as long as the process. Frozen, it is out of the cyclic collector's
        # way: every full collection walked it, a 412 ms pause in 3,000 recommendations, 64
        # and 100 ms once frozen. Not for components a caller passes in (tests): frozen
        # objects that become cyclic garbage are never collected.
        then = settle_heap if components is None else None
        warmup = app.state.warmup = Warmup(warmup_steps(built), then=then)
        warmup.start()  # a failed step is logged; the request path retries it
        if not background:
            warmup.wait()
        if built.settings.experiments_file is not None:  # a bad file stops the start here
            built.experiments.load_file(built.settings.experiments_file)
        refresher = SnapshotRefresher(built.snapshots, built.settings.snapshot_refresh_seconds)
        refresher.start()
        if built.background_worker is not None:  # no Redis: the worker runs in-process
            built.background_worker.start()
        # With Redis, `shopwise worker` processes write the explanations instead.
        explainers = built.explanations.workers if built.explanations.in_process else None
        if explainers is not None:
            explainers.start()
        built.impressions.start()
        log.info(
            "Shopwise %s ready: database %s, explanations %s",
            __version__,
            built.db.url.get_backend_name(),
            built.llm_mode,
        )
        if not built.settings.auth_enabled:
            log.warning(
                "authentication is OFF: open demo on loopback (%s); set AUTH_MODE=on or bind "
                "to another address to require API keys and tokens",
                built.settings.api_host,
            )
        try:
            yield
        finally:
            refresher.stop()
            if explainers is not None:
                explainers.stop()
            # A training in progress stops between batches (a torch thread still training
            # at interpreter exit aborts the process), the worker's retrain included.
            built.training.close()
            if built.background_worker is not None:
                built.background_worker.stop()
                built.processor.wait_for_retrain(timeout=10)
            built.impressions.stop()  # writes what is still queued
            if components is None:
                built.db.dispose()

    app = FastAPI(
        title="Shopwise",
        version=__version__,
        description="Explained product recommendations for online shops.",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(RateLimitMiddleware)  # inside the request context: 429s carry its id
    app.add_middleware(  # outside the rate limiter: shedding must be the cheapest answer
        AdmissionMiddleware,
        max_in_flight=config.max_in_flight,
        wait_seconds=config.admission_wait_ms / 1000,
        shed=metrics.requests_shed,
        load=load,  # the in-process worker precomputes between requests
    )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=metrics,
        max_body_bytes=config.max_body_bytes,
        deadline_seconds=config.request_deadline_seconds,
    )
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-API-Key"],
            expose_headers=["X-Request-ID"],
        )
    # The storefront's routes first: FastAPI tries the included routers in order, each route
    # of each (no other route matches these paths, so the order changes no answer).
    for module in (recommend, events, root, health, auth, users, products, images, chat):
        app.include_router(module.router)
    for module in (explanations, admin_prompts):  # explanation streams, prompt editing
        app.include_router(module.router)
    app.include_router(admin_status.router)  # the operator's dashboard
    for module in (experiments, analytics):  # A/B tests and online metrics
        app.include_router(module.router)
    app.include_router(segments.router)  # shopper segments
    app.include_router(search.router)  # semantic product search
    return app
