from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import WithJsonSchema
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CatalogDep, SessionDep
from backend.api.routes.users import Limit, Offset
from backend.api.schemas import CategoryOut, Page, ProductOut
from backend.db import crud
from backend.errors import InvalidInputError, NotFoundError
from backend.security.text import SafeText
from backend.services.catalog import ProductIn, ProductPatch

router = APIRouter(tags=["catalog"])

# A filter bound: a number (the schema says so; a free-form string would promise too much).
PriceBound = Annotated[Decimal, WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1e6})]
Price = Annotated[PriceBound | None, Query(ge=0, le=1_000_000)]


@router.get("/products", response_model=Page[ProductOut], summary="Browse and filter the catalog")
def list_products(
    session: SessionDep,
    limit: Limit = 20,
    offset: Offset = 0,
    category: Annotated[SafeText | None, Query(min_length=1, max_length=120)] = None,
    min_price: Price = None,
    max_price: Price = None,
    in_stock: Annotated[bool | None, Query(description="true: only in stock")] = None,
    q: Annotated[SafeText | None, Query(min_length=1, max_length=200, description="Text")] = None,
) -> Page[ProductOut]:
    if min_price is not None and max_price is not None and min_price > max_price:
        raise InvalidInputError("min_price must not be greater than max_price")
    page = crud.list_products(
        session=session,
        limit=limit,
        offset=offset,
        category=category,
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        q=q,
    )
    return Page[ProductOut](
        items=[ProductOut.of(p) for p in page.items], total=page.total, limit=limit, offset=offset
    )


@router.get(
    "/products/{product_id}",
    response_model=ProductOut,
    responses={404: {"description": "No such product"}},
)
def get_product(session: SessionDep, product_id: Annotated[uuid.UUID, Path()]) -> ProductOut:
    viewed = crud.get_product(session=session, product_id=product_id)
    if viewed is None:
        raise NotFoundError("product", product_id)
    return ProductOut.of(viewed)


@router.get("/categories", response_model=Page[CategoryOut], summary="Categories with counts")
def list_categories(
    session: SessionDep, limit: Limit = 100, offset: Offset = 0
) -> Page[CategoryOut]:
    categories = crud.list_categories(session=session)
    return Page[CategoryOut](
        items=[
            CategoryOut(name=n, product_count=c) for n, c in categories[offset : offset + limit]
        ],
        total=len(categories),
        limit=limit,
        offset=offset,
    )


# --- catalog writes: the vector index follows each one, so search finds what the catalog holds -


@router.post(
    "/products", response_model=ProductOut, status_code=201, summary="Add a product (indexed)"
)
async def create_product(catalog: CatalogDep, body: ProductIn) -> ProductOut:
    viewed = await run_in_threadpool(catalog.create, body)
    return ProductOut.of(viewed)


@router.put(
    "/products/{product_id}",
    response_model=ProductOut,
    summary="Change a product (its vector is recomputed only if its text changed)",
    responses={404: {"description": "No such product"}},
)
async def update_product(
    catalog: CatalogDep, product_id: Annotated[uuid.UUID, Path()], body: ProductPatch
) -> ProductOut:
    viewed = await run_in_threadpool(catalog.update, product_id, body)
    return ProductOut.of(viewed)


@router.delete(
    "/products/{product_id}",
    status_code=204,
    summary="Remove a product and its vector",
    responses={404: {"description": "No such product"}},
)
async def delete_product(catalog: CatalogDep, product_id: Annotated[uuid.UUID, Path()]) -> Response:
    await run_in_threadpool(catalog.delete, product_id)
    return Response(status_code=204)
