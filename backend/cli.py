"""The ``shopwise`` command: migrate, seed, serve (and more as the service grows)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from backend.config import Settings, SettingsError, load_settings

app = typer.Typer(help="Shopwise: explained product recommendations.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from exc


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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
    uvicorn.run(
        "backend.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    app()
