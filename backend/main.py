"""The app factory: builds every component once and injects it.

Nothing here runs at import time; ``create_app`` builds the components in the lifespan (or
takes ready ones from a test) and hangs them on ``app.state``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from backend import __version__
from backend.api.errors import install_error_handlers
from backend.api.routes import events, health, images, products, recommend, root, users
from backend.components import Components, build_components
from backend.config import Settings, get_settings
from backend.recommender.catalog import SnapshotManager

log = logging.getLogger(__name__)


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
            except Exception:  # keep serving the old snapshot; the next tick retries
                log.exception("snapshot refresh failed")


def create_app(settings: Settings | None = None, components: Components | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = components or build_components(settings or get_settings())
        app.state.components = built
        try:
            built.snapshots.get()  # build the snapshot before the first request
        except Exception:
            log.exception("could not build the engine snapshot; will retry on demand")
        refresher = SnapshotRefresher(built.snapshots, built.settings.snapshot_refresh_seconds)
        refresher.start()
        log.info(
            "Shopwise %s ready: database %s, explanations %s",
            __version__,
            built.db.url.get_backend_name(),
            built.llm_mode,
        )
        try:
            yield
        finally:
            refresher.stop()
            if components is None:
                built.db.dispose()

    app = FastAPI(
        title="Shopwise",
        version=__version__,
        description="Explained product recommendations for online shops.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for module in (root, health, users, products, images, recommend, events):
        app.include_router(module.router)
    return app
