"""Semantic search and similar products: HTTP only, the work is in services/search.py."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from backend.api.deps import SearchDep, SnapshotsDep
from backend.errors import InvalidInputError
from backend.recommender.snapshot import SnapshotManager
from backend.recommender.strategies.base import CandidateFilter
from backend.security.text import SafeText
from backend.services.search import Hit

router = APIRouter(tags=["search"])

TopN = Annotated[int, Query(ge=1, le=50, description="How many (1–50)")]
# A filter bound: a number (the schema says so; a free-form string would promise too much).
PriceBound = Annotated[Decimal, WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1e6})]
Price = Annotated[PriceBound | None, Query(ge=0, le=1_000_000)]
Category = Annotated[SafeText | None, Query(min_length=1, max_length=120)]


class SearchHit(BaseModel):
    id: uuid.UUID
    name: str
    category: str
    price: Decimal
    in_stock: bool
    image_url: str | None
    similarity: float


class SearchResult(BaseModel):
    items: list[SearchHit]
    query: str | None = None
    product_id: uuid.UUID | None = None


def _hits(snapshots: SnapshotManager, hits: list[Hit]) -> list[SearchHit]:
    snapshot = snapshots.get()
    out = []
    for hit in hits:
        p = snapshot.products[hit.index]
        out.append(
            SearchHit(
                id=p.id,
                name=p.name,
                category=p.category,
                price=p.price,
                in_stock=p.quantity > 0,
                image_url=p.image_url,
                similarity=hit.similarity,
            )
        )
    return out


def _filters(
    category: str | None, min_price: Decimal | None, max_price: Decimal | None, in_stock: bool
) -> CandidateFilter:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidInputError("min_price must not be greater than max_price")
    return CandidateFilter(
        category=category,
        min_price=float(min_price) if min_price is not None else None,
        max_price=float(max_price) if max_price is not None else None,
        in_stock=in_stock,
    )


@router.get("/search", response_model=SearchResult, summary="Semantic product search")
async def search(
    service: SearchDep,
    snapshots: SnapshotsDep,
    q: Annotated[SafeText, Query(min_length=1, max_length=200, description="What to look for")],
    top_n: TopN = 10,
    category: Category = None,
    min_price: Price = None,
    max_price: Price = None,
    in_stock: Annotated[bool, Query(description="true: only in stock")] = False,
) -> SearchResult:
    filters = _filters(category, min_price, max_price, in_stock)
    hits = await run_in_threadpool(service.search, q.strip(), top_n=top_n, filters=filters)
    return SearchResult(items=_hits(snapshots, hits), query=q)


@router.get(
    "/products/{product_id}/similar",
    response_model=SearchResult,
    summary="Products whose description is closest to this one",
    responses={404: {"description": "No such product"}},
)
async def similar(
    service: SearchDep,
    snapshots: SnapshotsDep,
    product_id: Annotated[uuid.UUID, Path()],
    top_n: TopN = 10,
    category: Category = None,
    min_price: Price = None,
    max_price: Price = None,
    in_stock: Annotated[bool, Query(description="true: only in stock")] = False,
) -> SearchResult:
    filters = _filters(category, min_price, max_price, in_stock)
    hits = await run_in_threadpool(service.similar, product_id, top_n=top_n, filters=filters)
    return SearchResult(items=_hits(snapshots, hits), product_id=product_id)
