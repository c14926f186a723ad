"""SQLModel tables: the database is the truth for the catalog, users and interactions.

Cart and wishlist are tables of their own (not derived from the event log on every read):
they change with add/remove events and are read far more often than they change. Search and
purchase history are derived from ``interaction`` (action = search / purchase).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


# Timestamps are stored as timezone-aware on PostgreSQL; SQLite drops the zone, so readers
# normalise with ``as_utc``.
TZDateTime = sa.DateTime(timezone=True)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Action(StrEnum):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    WISHLIST = "wishlist"
    PURCHASE = "purchase"
    SEARCH = "search"


class Product(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=300, index=True)
    description: str = Field(default="", sa_type=sa.Text)
    category: str = Field(max_length=120, index=True)
    price: Decimal = Field(sa_type=sa.Numeric(12, 2), ge=0)
    quantity: int = Field(default=0, ge=0)
    image_url: str | None = Field(default=None, max_length=1000)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    views: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime, index=True)


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=80, sa_column_kwargs={"unique": True}, index=True)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True})
    full_name: str | None = Field(default=None, max_length=200)
    # Never leaves the service: response models do not have this field.
    password_hash: str | None = Field(default=None, max_length=300)
    is_guest: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class Interaction(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_interaction_user_created", "user_id", "created_at"),
        sa.CheckConstraint(
            "action IN ('view', 'click', 'add_to_cart', 'remove_from_cart', 'wishlist', "
            "'purchase', 'search')",
            name="ck_interaction_action",
        ),
        sa.CheckConstraint(
            "(action = 'search' AND query IS NOT NULL) "
            "OR (action <> 'search' AND product_id IS NOT NULL)",
            name="ck_interaction_target",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Indexed by ix_interaction_user_created (user_id first).
    user_id: uuid.UUID = Field(foreign_key="app_user.id", ondelete="CASCADE")
    product_id: uuid.UUID | None = Field(
        default=None, foreign_key="product.id", index=True, ondelete="CASCADE"
    )
    action: str = Field(max_length=32)
    query: str | None = Field(default=None, max_length=500)
    # A client-supplied id makes a retried event idempotent (unique when present).
    event_id: str | None = Field(default=None, max_length=128, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime, index=True)


class CartItem(SQLModel, table=True):
    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    product_id: uuid.UUID = Field(foreign_key="product.id", primary_key=True, ondelete="CASCADE")
    quantity: int = Field(default=1, ge=1)
    added_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class WishlistItem(SQLModel, table=True):
    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    product_id: uuid.UUID = Field(foreign_key="product.id", primary_key=True, ondelete="CASCADE")
    added_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
