"""``shopwise serve``: the API server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from backend.cli.common import configure_logging, migrated_engine, settings
from backend.cli.listeners import run_workers

APP = "backend.main:create_app"


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default API_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the API (migrating the database first)."""
    import uvicorn

    config = settings()
    configure_logging(config)
    migrated_engine(config).dispose()
    if workers > 1:  # one /metrics for all processes (see backend/observability/metrics.py)
        _shared_metrics_dir(config.data_dir)
    options: dict[str, Any] = dict(
        factory=True,
        host=host or config.api_host,
        port=port or config.api_port,
        workers=workers,
        log_level=config.log_level.lower(),
        log_config=None,  # keep our JSON handler; uvicorn's loggers propagate to it
        access_log=False,  # the request middleware logs every request with its id
    )
    if workers > 1:  # a listening socket per process: connections spread evenly
        run_workers(uvicorn.Config(APP, **options))
    else:
        uvicorn.run(APP, **options)


def _shared_metrics_dir(data_dir: Path) -> None:
    """Set before the worker processes start (they inherit it), and emptied: files left by
    an earlier run would be counted again."""
    from backend.observability.metrics import MULTIPROCESS_ENV

    folder = Path(os.environ.get(MULTIPROCESS_ENV) or data_dir / "prometheus")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(folder)
