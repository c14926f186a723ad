"""``Page``: one slice of a longer list, as a query returns it and every list endpoint answers."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """The items at ``offset`` (at most ``limit`` of them) and how many there are in all."""

    items: list[T]
    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
