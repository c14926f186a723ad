"""What the operator's dashboard shows besides experiments: catalog, index, models, evaluation.

Read-only. The catalog and model figures come from the database (a few ``COUNT`` queries and
the newest ``model_version`` rows); the offline evaluation comes from the JSON that
``shopwise evaluate`` writes beside its markdown report, or, for a report written before the
JSON existed, from the markdown table itself.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.db.models import IndexState, Interaction, ModelVersion, Product, User
from backend.errors import NotFoundError
from backend.recommender.snapshot import SnapshotManager


class CatalogCounts(BaseModel):
    products: int
    in_stock: int
    categories: int
    users: int
    interactions: int


class IndexOut(BaseModel):
    collection: str
    model_id: str
    vectors: int
    last_run_at: datetime


class SnapshotOut(BaseModel):
    version: str | None
    products: int
    embedded: int


class ModelVersionOut(BaseModel):
    version: str
    kinds: list[str]
    n_users: int
    n_items: int
    n_interactions: int
    reason: str
    seconds: float
    trained_at: datetime


class Overview(BaseModel):
    catalog: CatalogCounts
    snapshot: SnapshotOut
    index: list[IndexOut]
    models: list[ModelVersionOut]
    explanations: str


def overview(
    *, db: Engine, snapshots: SnapshotManager, explanations: str, models: int = 5
) -> Overview:
    with Session(db) as session:

        def count(column: Any, *where: Any) -> int:
            return int(session.exec(select(sa.func.count(column)).where(*where)).one())

        catalog = CatalogCounts(
            products=count(col(Product.id)),
            in_stock=count(col(Product.id), col(Product.quantity) > 0),
            categories=count(sa.distinct(col(Product.category))),
            users=count(col(User.id)),
            interactions=count(col(Interaction.id)),
        )
        index = [
            IndexOut.model_validate(row, from_attributes=True)
            for row in session.exec(select(IndexState).order_by(col(IndexState.collection)))
        ]
        versions = [
            ModelVersionOut.model_validate(row, from_attributes=True)
            for row in session.exec(
                select(ModelVersion).order_by(col(ModelVersion.trained_at).desc()).limit(models)
            )
        ]
    loaded = snapshots.loaded
    embedded = 0
    if loaded is not None and loaded.embeddings is not None:
        embedded = int((loaded.embeddings != 0).any(axis=1).sum())
    snapshot = SnapshotOut(
        version=loaded.version if loaded else None,
        products=len(loaded.products) if loaded else 0,
        embedded=embedded,
    )
    return Overview(
        catalog=catalog, snapshot=snapshot, index=index, models=versions, explanations=explanations
    )


# --- offline evaluation --------------------------------------------------------------------

JSON_NAME = "evaluation.json"
MARKDOWN_NAME = "EVALUATION.md"


class EvaluationRow(BaseModel):
    strategy: str
    kind: str  # "baseline" | "ours"
    valid_hr10: float
    valid_ndcg10: float
    valid_recall20: float
    test_hr10: float
    test_ndcg10: float
    test_recall20: float
    coverage: float
    diversity: float
    params: str


class EvaluationReport(BaseModel):
    source: str  # the file it was read from, relative to its folder's parent
    command: str | None
    dataset: str | None
    users: int | None
    items: int | None
    headline: str | None
    rows: list[EvaluationRow]
    generated_at: datetime | None = None


def read_evaluation(folder: Path) -> EvaluationReport:
    """The latest offline evaluation in ``folder``: its JSON, else its markdown table."""
    as_json = folder / JSON_NAME
    if as_json.is_file():
        data = json.loads(as_json.read_text(encoding="utf-8"))
        return EvaluationReport.model_validate({**data, "source": _shown(as_json)})
    as_markdown = folder / MARKDOWN_NAME
    if as_markdown.is_file():
        return parse_markdown(as_markdown.read_text(encoding="utf-8"), _shown(as_markdown))
    raise NotFoundError("evaluation report", str(folder / JSON_NAME))


def _shown(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


_COMMAND = re.compile(r"^Command: `([^`]+)`", re.MULTILINE)
_DATASET = re.compile(r"^Dataset `([^`]+)`: (\d+) users, (\d+) items", re.MULTILINE)
_HEADLINE = re.compile(r"^\*\*(.+?)\*\*(.*)$", re.MULTILINE)
_NUMBER_COLUMNS = 8  # valid HR/NDCG/R, test HR/NDCG/R, coverage, diversity


def parse_markdown(text: str, source: str) -> EvaluationReport:
    """Read the table ``backend.recommender.evaluation.report.markdown`` writes."""
    rows: list[EvaluationRow] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 + _NUMBER_COLUMNS or cells[1] not in ("baseline", "ours"):
            continue
        try:
            # A test cell reads "0.1108 [0.1047, 0.1167]" (its 95% interval) or "**0.1108**".
            numbers = [float(c.split(" [")[0].strip("*")) for c in cells[2 : 2 + _NUMBER_COLUMNS]]
        except ValueError:
            continue
        rows.append(
            EvaluationRow(
                strategy=cells[0],
                kind=cells[1],
                valid_hr10=numbers[0],
                valid_ndcg10=numbers[1],
                valid_recall20=numbers[2],
                test_hr10=numbers[3],
                test_ndcg10=numbers[4],
                test_recall20=numbers[5],
                coverage=numbers[6],
                diversity=numbers[7],
                params=cells[-1],
            )
        )
    command, dataset, headline = (
        _COMMAND.search(text),
        _DATASET.search(text),
        _HEADLINE.search(text),
    )
    return EvaluationReport(
        source=source,
        command=command.group(1) if command else None,
        dataset=dataset.group(1) if dataset else None,
        users=int(dataset.group(2)) if dataset else None,
        items=int(dataset.group(3)) if dataset else None,
        headline=(headline.group(1) + headline.group(2)).strip() if headline else None,
        rows=rows,
    )
