"""``shopwise index | train | evaluate | import amazon``: the retrieval side's commands.

Kept apart from ``cli.py`` so that module stays a list of verbs; ``register`` adds these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from rich.progress import Progress

    from backend.components import Components
    from backend.services.retrieval import Retrieval
    from backend.services.training import TrainingService

T = TypeVar("T")

import_app = typer.Typer(help="Import catalogs and interactions from public datasets.")


def _components() -> tuple[Components, Retrieval, TrainingService]:
    from backend.cli import _settings
    from backend.components import build_components
    from backend.db.migrate import upgrade

    settings = _settings()
    components = build_components(settings, serving=False)
    upgrade(components.db)
    retrieval = components.retrieval
    if retrieval is None or retrieval.training is None:
        raise typer.Exit(code=2)
    return components, retrieval, retrieval.training


def _progress() -> Progress:
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


def index(
    rebuild: Annotated[bool, typer.Option(help="Drop every vector and embed all again")] = False,
) -> None:
    """Embed the catalog into the vector index (unchanged products are skipped)."""
    from sqlmodel import Session

    from backend.db import repository

    components, retrieval, _ = _components()
    with Session(components.db) as session:
        products = repository.load_catalog(session=session)
    with _progress() as progress:
        task = progress.add_task("indexing", total=len(products))
        report = retrieval.indexer.rebuild(
            products, force=rebuild, progress=lambda n: progress.advance(task, n)
        )
    typer.echo(f"index: {report}")
    typer.echo(f"vector store: {retrieval.store.location} ({retrieval.store.count()} vectors)")
    components.db.dispose()


def train() -> None:
    """Train the collaborative models (item-item BM25/cosine, ALS, EASE) and record a version."""
    components, _, training = _components()
    report = training.train_now(reason="cli", progress=lambda step: typer.echo(f"  {step}…"))
    typer.echo(f"trained {report}")
    components.db.dispose()


def evaluate(
    dataset: Annotated[Path, typer.Option(help="Folder with the RecBole atomic files")],
    out: Annotated[Path, typer.Option(help="Markdown report (a PNG chart goes beside it)")] = Path(
        "bench/EVALUATION.md"
    ),
    quick: Annotated[bool, typer.Option(help="A smaller tuning grid (for a smoke run)")] = False,
) -> None:
    """Leave-one-out evaluation of every strategy and the baselines; tuned on validation."""
    import sys

    from backend.cli import _settings
    from backend.recommender.embedder import SentenceTransformerEmbedder
    from backend.recommender.evaluation.report import as_json, chart, markdown
    from backend.recommender.evaluation.runner import Grid
    from backend.recommender.evaluation.runner import evaluate as run

    if not dataset.is_dir():
        typer.secho(f"dataset folder {dataset} does not exist", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    settings = _settings()
    grid = Grid()
    if quick:
        grid = Grid(
            ease_lambda=(80.0,),
            ease_content_alpha=(40.0,),
            knn_neighbours=(100,),
            als_factors=(64,),
            content=(0.2, 0.4),
            popularity=(0.0, 0.05),
            rules=(0.0,),
            recency_decay=(0.7,),
        )
    with _progress() as progress:

        def track(items: Iterable[T], label: str, total: int) -> Iterator[T]:
            task = progress.add_task(label, total=total)
            for item in items:
                yield item
                progress.advance(task)
            progress.remove_task(task)

        report = run(
            dataset,
            SentenceTransformerEmbedder(settings.embedding_model_path),
            cache_dir=settings.data_dir / "cache",
            grid=grid,
            track=track,
            say=progress.console.print,
        )
    command = "shopwise evaluate --dataset " + " ".join(sys.argv[sys.argv.index("--dataset") + 1 :])
    if "--dataset" not in sys.argv:
        command = f"shopwise evaluate --dataset {dataset}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(report, command), encoding="utf-8")
    out.with_name("evaluation.json").write_text(as_json(report, command), encoding="utf-8")
    chart(report, out.with_name("evaluation.png"))
    typer.echo(f"report: {out}, evaluation.json and evaluation.png beside it")


@import_app.command("amazon")
def import_amazon(
    meta: Annotated[Path, typer.Option(help="meta_*.json.gz: product metadata")],
    reviews: Annotated[
        Path | None, typer.Option(help="*_5.json.gz: reviews, imported as purchases")
    ] = None,
    skip_index: Annotated[bool, typer.Option(help="Do not embed the imported products")] = False,
) -> None:
    """Load an Amazon 2018 category (metadata, reviews) into the catalog and the index."""
    from sqlmodel import Session

    from backend.db import repository
    from backend.importers.amazon import import_amazon as run

    components, retrieval, _ = _components()
    report = run(components.db, meta=meta, reviews=reviews)
    typer.echo(report.summary())
    if not skip_index:
        with Session(components.db) as session:
            products = repository.load_catalog(session=session)
        with _progress() as progress:
            task = progress.add_task("indexing", total=len(products))
            indexed = retrieval.indexer.rebuild(
                products, progress=lambda n: progress.advance(task, n)
            )
        typer.echo(f"index: {indexed}")
    components.db.dispose()


def register(app: typer.Typer) -> None:
    app.command()(index)
    app.command()(train)
    app.command()(evaluate)
    app.add_typer(import_app, name="import")
