"""HTTP request and response shapes. No password hash has a field here, so none can leak.

Every text a client sends is typed ``SafeText`` (one line) or ``SafeMultilineText`` (prose),
and every link ``SafeUrl`` (``security.text``): control and bidi-override characters and
unsafe URL schemes are refused at the boundary, with one rule documented in the schema.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from backend.db.crud.catalog import ViewedProduct
from backend.db.models import Product
from backend.pagination import Page
from backend.security.text import SafeMultilineText, SafeText, SafeUrl
from backend.services.health import HealthReport
from backend.services.schemas import RecommendationResult, RecommendedProduct
from backend.services.track import EventIn, EventResult

__all__ = [
    "CategoryOut",
    "EventIn",
    "EventResult",
    "HealthReport",
    "Page",
    "ProductOut",
    "RecommendationResult",
    "RecommendedProduct",
    "SafeMultilineText",
    "SafeText",
    "SafeUrl",
    "ServiceInfo",
    "UserDetail",
    "UserOut",
]


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    category: str
    price: Decimal
    quantity: int
    in_stock: bool = False
    image_url: str | None
    tags: list[str]
    views: int
    created_at: datetime
    updated_at: datetime
    latitude: float | None = None  # where it is offered; null: ships anywhere
    longitude: float | None = None

    @classmethod
    def of(cls, viewed: ViewedProduct) -> ProductOut:
        product = viewed.product
        shared = cls.model_fields.keys() & Product.model_fields.keys()
        columns = {name: getattr(product, name) for name in shared}
        return cls(**columns, views=viewed.views, in_stock=product.quantity > 0)


class ProductBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    category: str
    price: Decimal
    image_url: str | None


class CartLine(ProductBrief):
    cart_quantity: int


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    email: str
    full_name: str | None
    is_guest: bool
    created_at: datetime
    latitude: float | None = None  # for the optional location boost
    longitude: float | None = None


class UserDetail(UserOut):
    """A user with the histories derived from their interactions."""

    recent_searches: list[str]
    purchases: list[ProductBrief]
    recently_viewed: list[ProductBrief]
    cart: list[CartLine]
    wishlist: list[ProductBrief]


class CategoryOut(BaseModel):
    name: str
    product_count: int


class ServiceInfo(BaseModel):
    name: str
    version: str
    docs: str
    explanations: str
    endpoints: list[str]
