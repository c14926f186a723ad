"""Product create / update / delete that keeps the vector index in step with the database.

The database is the truth: it is written first. The index follows in the same call; if the
vector store fails, the write still stands, the failure is logged and reported in the result,
and ``shopwise index`` (which skips everything unchanged) repairs it.
"""

from __future__ import annotations

import logging
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import Engine

from backend.db.crud.catalog import ViewedProduct, view_counts
from backend.db.engine import session_scope
from backend.db.models import Product, utcnow
from backend.errors import NotFoundError
from backend.jobs.indexing import Indexer
from backend.recommender.snapshot import ProductRecord, SnapshotManager
from backend.security.text import SafeMultilineText, SafeText, SafeUrl

log = logging.getLogger(__name__)


# The stock column is a 32-bit integer in PostgreSQL; beyond it a write would fail deep down.
MAX_QUANTITY = 2**31 - 1
# A price: a JSON number, or text like "19.90" (exactly what the schema documents), at most
# 1,000,000, stored rounded to cents.
_PRICE_TEXT = r"^(1000000(\.0+)?|[0-9]{1,6}(\.[0-9]+)?)$"


def _price_input(value: object) -> object:
    if isinstance(value, bool) or (isinstance(value, str) and not re.match(_PRICE_TEXT, value)):
        raise PydanticCustomError("price", "must be a number from 0 to 1000000, e.g. 19.90")
    return value


def _to_cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


Price = Annotated[
    Decimal,
    BeforeValidator(_price_input),
    Field(ge=0, le=1_000_000),
    AfterValidator(_to_cents),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1_000_000},
                {"type": "string", "pattern": _PRICE_TEXT},
            ]
        }
    ),
]
Tag = Annotated[SafeText, Field(max_length=100)]


class ProductIn(BaseModel):
    name: SafeText = Field(min_length=1, max_length=300)
    description: SafeMultilineText = Field(default="", max_length=20_000)
    category: SafeText = Field(min_length=1, max_length=120)
    price: Price
    quantity: int = Field(default=0, ge=0, le=MAX_QUANTITY)
    image_url: SafeUrl | None = Field(default=None, max_length=1000)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    # Where the product is offered (store or pickup point); both or neither.
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_coordinates(self) -> ProductIn:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: send both or neither")
        return self


def _unchanged() -> Any:
    """A patch field left out: nothing to change. Never a value the field accepts, so a
    ``null`` sent for a field the product must have is a 422, not a NOT NULL error."""
    return None


class ProductPatch(BaseModel):
    """Only the fields sent change; ``null`` clears the fields a product may lack (picture,
    coordinates) and is refused for the ones it must have."""

    name: SafeText = Field(default_factory=_unchanged, min_length=1, max_length=300)
    description: SafeMultilineText = Field(default_factory=_unchanged, max_length=20_000)
    category: SafeText = Field(default_factory=_unchanged, min_length=1, max_length=120)
    price: Price = Field(default_factory=_unchanged)
    quantity: int = Field(default_factory=_unchanged, ge=0, le=MAX_QUANTITY)
    image_url: SafeUrl | None = Field(default=None, max_length=1000)
    tags: list[Tag] | None = Field(default=None, max_length=50)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_coordinates(self) -> ProductPatch:
        sent = {"latitude", "longitude"} & self.model_fields_set
        if sent and (len(sent) == 1 or (self.latitude is None) != (self.longitude is None)):
            raise ValueError("latitude and longitude go together: send both (or both null)")
        return self


def record_of(product: Product) -> ProductRecord:
    return ProductRecord(
        id=product.id,
        name=product.name,
        category=product.category,
        price=product.price,
        quantity=product.quantity,
        tags=tuple(product.tags or ()),
        image_url=product.image_url,
        description=product.description or "",
        latitude=product.latitude,
        longitude=product.longitude,
    )


class CatalogService:
    def __init__(self, *, db: Engine, snapshots: SnapshotManager, indexer: Indexer | None) -> None:
        self.db = db
        self.snapshots = snapshots
        self.indexer = indexer

    def create(self, data: ProductIn) -> ViewedProduct:
        product = Product(**data.model_dump())
        product.tags = _clean_tags(data.tags)
        with session_scope(self.db) as session:
            session.add(product)
            views = view_counts(session=session, ids=[product.id]).get(product.id, 0)
        self._index(product)
        return ViewedProduct(product, views)

    def update(self, product_id: uuid.UUID, patch: ProductPatch) -> ViewedProduct:
        with session_scope(self.db) as session:
            product = session.get(Product, product_id)
            if product is None:
                raise NotFoundError("product", product_id)
            changes = patch.model_dump(exclude_unset=True)
            if "tags" in changes:
                changes["tags"] = _clean_tags(changes["tags"] or [])
            for key, value in changes.items():
                setattr(product, key, value)
            product.updated_at = utcnow()
            session.add(product)
            views = view_counts(session=session, ids=[product_id]).get(product_id, 0)
        self._index(product)
        return ViewedProduct(product, views)

    def delete(self, product_id: uuid.UUID) -> None:
        with session_scope(self.db) as session:
            product = session.get(Product, product_id)
            if product is None:
                raise NotFoundError("product", product_id)
            session.delete(product)
        if self.indexer is not None:
            try:
                self.indexer.delete([product_id])
            except Exception:
                log.exception("vector index delete failed for %s; run `shopwise index`", product_id)
        self.snapshots.invalidate()

    def _index(self, product: Product) -> None:
        if self.indexer is not None:
            try:
                self.indexer.sync([record_of(product)])
            except Exception:
                log.exception("vector index update failed for %s; run `shopwise index`", product.id)
        self.snapshots.invalidate()


def _clean_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(t.strip().lower() for t in tags if t and t.strip()))
