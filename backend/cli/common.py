"""What every command needs: settings, logging, a migrated database, errors, progress bars."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from backend.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.engine import Engine


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise error(str(exc)) from exc


def error(message: str) -> typer.Exit:
    """Print ``message`` in red on stderr; the caller raises what this returns (exit code 2)."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def configure_logging(config: Settings) -> None:
    from backend.observability.logging import configure_logging as configure

    configure(config.log_level, json_lines=config.log_json)


def migrated_engine(config: Settings) -> Engine:
    """The database engine, its schema brought to the newest revision first."""
    from backend.db.engine import make_engine
    from backend.db.migrate import upgrade

    engine = make_engine(config.database_url)
    upgrade(engine)
    return engine


def progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
