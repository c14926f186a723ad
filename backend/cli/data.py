"""The data verbs: migrate, seed, import, index, train, segments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from backend.cli.common import migrated_engine, progress, settings

if TYPE_CHECKING:
    from backend.jobs.indexing import IndexReport
    from backend.wiring import Components

import_app = typer.Typer(help="Import catalogs and interactions from public datasets.")


def migrate() -> None:
    """Bring the database schema to the newest Alembic revision."""
    from backend.db.migrate import current_revision

    engine = migrated_engine(settings())
    typer.echo(f"database at revision {current_revision(engine)} ({engine.url.get_backend_name()})")
    engine.dispose()


def seed(
    seed_dir: Annotated[
        Path | None, typer.Option(help="Folder with products/users/interactions.json")
    ] = None,
) -> None:
    """Migrate, then load the demo data (loading twice adds nothing)."""
    from backend.db.seed import load_seed

    config = settings()
    engine = migrated_engine(config)
    report = load_seed(engine, seed_dir or config.seed_dir)
    typer.echo(f"seed: {report}")
    engine.dispose()


def segments() -> None:
    """Recompute the shopper segments (K-means over profile vectors) now and list them."""
    from backend.services.segments import SegmentService
    from backend.services.snapshots import snapshot_manager

    config = settings()
    engine = migrated_engine(config)
    service = SegmentService(
        db=engine,
        snapshots=snapshot_manager(engine),
        k=config.segment_count,
        cold_start_interactions=config.segment_cold_start_interactions,
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


def index(
    rebuild: Annotated[bool, typer.Option(help="Drop every vector and embed all again")] = False,
) -> None:
    """Embed the catalog into the vector index (unchanged products are skipped)."""
    components = _offline()
    typer.echo(f"index: {_index_catalog(components, force=rebuild)}")
    store = components.indexer.store
    typer.echo(f"vector store: {store.location} ({store.count()} vectors)")
    components.db.dispose()


def train() -> None:
    """Train the collaborative models (item-item BM25/cosine, ALS, EASE) and record a version."""
    components = _offline()
    # A running API or worker may be training: wait for it (saying so) rather than fail.
    report = components.training.train_now(
        reason="cli", progress=lambda step: typer.echo(f"  {step}…"), wait=None
    )
    typer.echo(f"trained {report}")
    components.db.dispose()


@import_app.command("amazon")
def import_amazon(
    meta: Annotated[Path, typer.Option(help="meta_*.json.gz: product metadata")],
    reviews: Annotated[
        Path | None, typer.Option(help="*_5.json.gz: reviews, imported as purchases")
    ] = None,
    skip_index: Annotated[bool, typer.Option(help="Do not embed the imported products")] = False,
) -> None:
    """Load an Amazon 2018 category (metadata, reviews) into the catalog and the index."""
    from backend.importers.amazon import import_amazon as run

    components = _offline()
    report = run(components.db, meta=meta, reviews=reviews)
    typer.echo(report.summary())
    if not skip_index:
        typer.echo(f"index: {_index_catalog(components, force=False)}")
    components.db.dispose()


def _offline() -> Components:
    """The application without its server threads (none start until a lifespan starts
    them), statements unbounded by a request deadline, the schema migrated."""
    from backend.db.migrate import upgrade
    from backend.wiring import build_components

    components = build_components(settings(), serving=False)
    upgrade(components.db)
    return components


def _index_catalog(components: Components, *, force: bool) -> IndexReport:
    """Embed every product of the catalog, with a progress bar; returns the indexer's report."""
    from sqlmodel import Session

    from backend.db import crud

    with Session(components.db) as session:
        products = crud.load_catalog(session=session)
    with progress() as bar:
        task = bar.add_task("indexing", total=len(products))
        return components.indexer.rebuild(
            products, force=force, progress=lambda n: bar.advance(task, n)
        )
