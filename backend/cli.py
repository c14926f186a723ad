"""The ``shopwise`` command: migrate, seed, serve (and more as the service grows)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backend.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from backend.services.auth import AuthService

app = typer.Typer(help="Shopwise: explained product recommendations.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc


def _configure_logging(settings: Settings) -> None:
    from backend.observability.logging import configure_logging

    configure_logging(settings.log_level, json_lines=settings.log_json)


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest Alembic revision."""
    from backend.db.engine import make_engine
    from backend.db.migrate import current_revision, upgrade

    settings = _settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    typer.echo(f"database at revision {current_revision(engine)} ({engine.url.get_backend_name()})")
    engine.dispose()


@app.command()
def seed(
    seed_dir: Annotated[
        Path | None, typer.Option(help="Folder with products/users/interactions.json")
    ] = None,
) -> None:
    """Migrate, then load the demo data (loading twice adds nothing)."""
    from backend.db.engine import make_engine
    from backend.db.migrate import upgrade
    from backend.db.seed import load_seed

    settings = _settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    report = load_seed(engine, seed_dir or settings.seed_dir)
    typer.echo(f"seed: {report}")
    engine.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default API_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the API (migrating the database first)."""
    import uvicorn

    from backend.db.engine import make_engine
    from backend.db.migrate import upgrade

    settings = _settings()
    _configure_logging(settings)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    engine.dispose()
    if workers > 1:  # one /metrics for all processes (see backend/observability/metrics.py)
        _shared_metrics_dir(settings.data_dir)
    uvicorn.run(
        "backend.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep our JSON handler; uvicorn's loggers propagate to it
        access_log=False,  # the request middleware logs every request with its id
    )


def _shared_metrics_dir(data_dir: Path) -> None:
    """Set before the worker processes start (they inherit it), and emptied: files left by
    an earlier run would be counted again."""
    import os
    import shutil

    from backend.observability.metrics import MULTIPROCESS_ENV

    folder = Path(os.environ.get(MULTIPROCESS_ENV) or data_dir / "prometheus")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(folder)


@app.command()
def worker(
    name: Annotated[
        str | None, typer.Option(help="Consumer name (default: host-pid); reuse it to resume")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Messages per read")] = 100,
    burst: Annotated[
        bool, typer.Option(help="Exit once nothing is left pending (cron jobs, tests)")
    ] = False,
    heartbeat_file: Annotated[
        Path | None, typer.Option(help="File touched after every step (for healthchecks)")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve this worker's Prometheus metrics on this port"),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address for --metrics-port (0.0.0.0 inside a container)")
    ] = "127.0.0.1",
) -> None:
    """Consume the event stream: precomputed recommendations, co-purchase stats, retrains."""
    import logging
    import os
    import signal
    import socket
    import threading

    from backend.components import build_components
    from backend.services.events import RedisEventStream
    from backend.services.outbox import OutboxSweeper
    from backend.services.worker import StreamWorker

    settings = _settings()
    _configure_logging(settings)
    if not settings.redis_url:
        typer.secho(
            "shopwise worker needs REDIS_URL; without Redis the API does this work in-process.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=2)
    components = build_components(settings, serving=False)
    assert components.processor is not None
    if metrics_port is not None:  # progress, processing delay and lag of this worker
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=components.metrics.registry)
    stream = RedisEventStream.from_url(
        settings.redis_url,
        stream=settings.redis_key_prefix + settings.event_stream,
        group=settings.event_group,
        timeout_seconds=10.0,  # longer than the blocking read
    )
    consumer = name or f"{socket.gethostname()}-{os.getpid()}"
    runner = StreamWorker(
        stream=stream,
        processor=components.processor,
        consumer=consumer,
        batch_size=batch_size,
        claim_idle_ms=int(settings.worker_claim_idle_seconds * 1000),
        refresh_snapshot=components.snapshots.refresh_if_stale,
        refresh_seconds=settings.snapshot_refresh_seconds or 5.0,
        heartbeat=heartbeat_file,
        sweeper=OutboxSweeper(db=components.db, stream=stream),
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger(__name__).info("worker %s reading %s", consumer, stream.stream)
    try:
        runner.run(stop, burst=burst)
    finally:
        components.db.dispose()
    typer.echo(f"worker {consumer}: {runner.handled} message(s) handled")


@app.command()
def segments() -> None:
    """Recompute the shopper segments (K-means over profile vectors) now and list them."""
    from backend.components import snapshot_manager
    from backend.db.engine import make_engine
    from backend.db.migrate import upgrade
    from backend.services.segments import SegmentService

    settings = _settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    service = SegmentService(
        db=engine,
        snapshots=snapshot_manager(engine),
        k=settings.segment_count,
        cold_start_interactions=settings.segment_cold_start_interactions,
    )
    try:
        report = service.recompute()
    finally:
        engine.dispose()
    if not report.k:
        typer.echo("no shopper has enough interactions to cluster yet; nothing stored")
        return
    silhouette = f"{report.silhouette:.3f}" if report.silhouette is not None else "n/a"
    typer.echo(
        f"{report.k} segment(s) over {report.users} shopper(s), silhouette {silhouette}, "
        f"{report.seconds:.2f} s"
    )
    for s in report.segments:
        typer.echo(
            f"  {s.segment}  {s.label:<40} {s.size:>5} shoppers  avg ${s.avg_price:,.2f}  "
            f"[{', '.join(s.top_categories)}]"
        )


keys_app = typer.Typer(help="Storefront API keys (stored hashed, shown once).")
admins_app = typer.Typer(help="Admin and editor accounts for the product team.")
app.add_typer(keys_app, name="keys")
app.add_typer(admins_app, name="admins")


def _auth_service() -> AuthService:
    from backend.db.engine import make_engine
    from backend.db.migrate import upgrade
    from backend.services.auth import AuthService

    settings = _settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return AuthService(db=engine, settings=settings)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for, e.g. 'main storefront'")],
    scope: Annotated[
        list[str],
        typer.Option(help="recommendations:read, events:write, catalog:write, users:read, "
                     "metrics:read (repeat the option)"),
    ],
) -> None:  # fmt: skip
    """Create a key; the key itself is printed once and never stored."""
    from backend.errors import InvalidInputError

    try:
        created = _auth_service().create_key(name, scope)
    except InvalidInputError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"id:     {created.id}\nscopes: {', '.join(created.scopes)}")
    typer.echo(f"key:    {created.api_key}\n(store it now: it cannot be shown again)")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id")]) -> None:
    """Revoke a key; requests with it fail at once."""
    import uuid

    from backend.errors import NotFoundError

    try:
        _auth_service().revoke_key(uuid.UUID(key_id))
    except (ValueError, NotFoundError) as exc:
        typer.secho(f"no such key: {key_id}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"revoked {key_id}")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    for key in _auth_service().list_keys():
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  sw_{key.prefix}_…  {key.name}  [{', '.join(key.scopes)}]  {state}")


@admins_app.command("create")
def admins_create(
    username: Annotated[str, typer.Option(help="Login name")],
    role: Annotated[str, typer.Option(help="admin or editor")] = "admin",
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                     envvar="SHOPWISE_ADMIN_PASSWORD", help="At least 12 characters"),
    ] = "",
) -> None:  # fmt: skip
    """Create an admin or editor account (password hashed with argon2id)."""
    from backend.errors import InvalidInputError

    try:
        user = _auth_service().create_admin(username, password, role)
    except InvalidInputError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"created {user.role} {user.username}")


def _register_retrieval() -> None:
    from backend.cli_retrieval import register

    register(app)


_register_retrieval()  # index, train, evaluate, import amazon (issue 3)


if __name__ == "__main__":
    app()
