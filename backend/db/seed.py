"""Load the demo data in ``seed_data/`` (idempotent: loading twice adds nothing)."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from backend.db.engine import session_scope
from backend.db.models import Interaction, Product, User, as_utc
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot, ProductRecord


@dataclass(frozen=True, slots=True)
class SeedReport:
    products: int
    users: int
    interactions: int
    skipped_existing: int

    def __str__(self) -> str:
        return (
            f"added {self.products} products, {self.users} users, "
            f"{self.interactions} interactions ({self.skipped_existing} already present)"
        )


def product_image_url(product_id: uuid.UUID) -> str:
    """Placeholder images are drawn by the API itself, so the demo works offline."""
    return f"/images/products/{product_id}.svg"


def load_seed(engine: Engine, seed_dir: Path) -> SeedReport:
    products = [_product(row) for row in _read(seed_dir / "products.json")]
    users = [_user(row) for row in _read(seed_dir / "users.json")]
    interactions = [_interaction(row) for row in _read(seed_dir / "interactions.json")]
    skipped = 0
    with session_scope(engine) as session:
        added = {}
        for model, rows in ((Product, products), (User, users), (Interaction, interactions)):
            new = _new_rows(session, model, rows)
            skipped += len(rows) - len(new)
            session.add_all(new)
            session.flush()
            added[model] = len(new)
    return SeedReport(added[Product], added[User], added[Interaction], skipped)


def _new_rows(session: Session, model: type[SQLModel], rows: list[Any]) -> list[Any]:
    ids = [r.id for r in rows]
    existing: set[uuid.UUID] = set()
    id_col = col(model.id)  # type: ignore[attr-defined]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        existing.update(session.exec(select(id_col).where(id_col.in_(chunk))).all())
    return [r for r in rows if r.id not in existing]


def _read(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, list):
        raise ValueError(f"{path} must hold a JSON list")
    return data


def _when(value: str) -> datetime:
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _product(row: dict[str, Any]) -> Product:
    product_id = uuid.UUID(row["id"])
    created = _when(row["created_at"])
    return Product(
        id=product_id,
        name=row["name"],
        description=row.get("description", ""),
        category=row["category"],
        price=Decimal(str(row["price"])),
        quantity=int(row["quantity"]),
        image_url=row.get("image_url") or product_image_url(product_id),
        tags=list(row["tags"]),
        created_at=created,
        updated_at=created,
    )


def _user(row: dict[str, Any]) -> User:
    return User(
        id=uuid.UUID(row["id"]),
        username=row["username"],
        email=row["email"],
        full_name=row.get("full_name"),
        is_guest=bool(row.get("is_guest", False)),
        created_at=_when(row["created_at"]),
    )


def _interaction(row: dict[str, Any]) -> Interaction:
    product_id = row.get("product_id")
    return Interaction(
        id=uuid.UUID(row["id"]),
        user_id=uuid.UUID(row["user_id"]),
        product_id=uuid.UUID(product_id) if product_id else None,
        action=row["action"],
        query=row.get("query"),
        created_at=_when(row["created_at"]),
    )


def seed_engine_data(
    seed_dir: Path,
) -> tuple[CatalogSnapshot, dict[uuid.UUID, list[InteractionRecord]], dict[str, str]]:
    """The demo shop straight from its files, as the engine sees it (no database):
    the snapshot, each user's interactions and each user's display name."""
    products = [
        ProductRecord(
            id=uuid.UUID(p["id"]),
            name=p["name"],
            category=p["category"],
            price=Decimal(p["price"]),
            quantity=p["quantity"],
            tags=tuple(p["tags"]),
            description=p["description"],
        )
        for p in _read(seed_dir / "products.json")
    ]
    history: dict[uuid.UUID, list[InteractionRecord]] = defaultdict(list)
    counts: dict[uuid.UUID, float] = defaultdict(float)
    for e in _read(seed_dir / "interactions.json"):
        pid = uuid.UUID(e["product_id"]) if e["product_id"] else None
        history[uuid.UUID(e["user_id"])].append(
            InteractionRecord(e["action"], _when(e["created_at"]), pid, e["query"])
        )
        if pid:
            counts[pid] += 1
    names = {u["id"]: u["full_name"] for u in _read(seed_dir / "users.json")}
    return CatalogSnapshot.build(products, counts), history, names
