"""``shopwise evaluate``: the offline evaluation of every strategy on a public dataset."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from backend.cli.common import error, progress, settings

T = TypeVar("T")


def evaluate(
    dataset: Annotated[Path, typer.Option(help="Folder with the RecBole atomic files")],
    out: Annotated[Path, typer.Option(help="Markdown report (a PNG chart goes beside it)")] = Path(
        "bench/EVALUATION.md"
    ),
    quick: Annotated[bool, typer.Option(help="A smaller tuning grid (for a smoke run)")] = False,
) -> None:
    """Leave-one-out evaluation of every strategy and the baselines; tuned on validation."""
    from backend.recommender.embedder import SentenceTransformerEmbedder
    from backend.recommender.evaluation.report import as_json, chart, markdown
    from backend.recommender.evaluation.runner import Grid
    from backend.recommender.evaluation.runner import evaluate as run

    if not dataset.is_dir():
        raise error(f"dataset folder {dataset} does not exist")
    config = settings()
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
            sequential=(),  # training SASRec is no smoke run
            next_item=(0.0,),
        )
    with progress() as bar:

        def track(items: Iterable[T], label: str, total: int) -> Iterator[T]:
            task = bar.add_task(label, total=total)
            for item in items:
                yield item
                bar.advance(task)
            bar.remove_task(task)

        report = run(
            dataset,
            SentenceTransformerEmbedder(config.embedding_model_path),
            cache_dir=config.data_dir / "cache",
            grid=grid,
            track=track,
            say=bar.console.print,
        )
    command = command_line(sys.argv, dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(report, command), encoding="utf-8")
    out.with_name("evaluation.json").write_text(as_json(report, command), encoding="utf-8")
    chart(report, out.with_name("evaluation.png"))
    typer.echo(f"report: {out}, evaluation.json and evaluation.png beside it")


def command_line(argv: list[str], dataset: Path) -> str:
    """The command as typed, for the report to say how it was made (``--dataset=x`` too)."""
    if "--dataset" not in argv:
        return f"shopwise evaluate --dataset {dataset}"
    return "shopwise evaluate --dataset " + " ".join(argv[argv.index("--dataset") + 1 :])
