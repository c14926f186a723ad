"""The optional location signal: shoppers' coordinates, and the boost settings per request.

Off by default (``LOCATION_BOOST``). Products carry the coordinates of where they are offered
(a store or pickup point; none: ships anywhere); a shopper's position is set by the storefront
or the shopper (``PUT /users/{id}/location``). The hybrid ranking turns the hint into a boost.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from pydantic import BaseModel, Field, model_validator
from sqlalchemy.engine import Engine

from backend.db.engine import session_scope
from backend.db.models import User
from backend.errors import NotFoundError
from backend.infra.cache import Cache, invalidate_user
from backend.recommender.strategies.base import LocationHint


class LocationIn(BaseModel):
    """A position in degrees; both null clears it."""

    latitude: float | None = Field(ge=-90, le=90)
    longitude: float | None = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _both(self) -> LocationIn:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: send both (or both null)")
        return self


class Located(Protocol):
    """A shopper's position as the boost reads it: a ``User``, or the recommendation's
    ``crud.Shopper``."""

    @property
    def latitude(self) -> float | None: ...

    @property
    def longitude(self) -> float | None: ...


class LocationService:
    def __init__(
        self,
        *,
        db: Engine,
        cache: Cache,
        enabled: bool = False,
        radius_km: float = 25.0,
        weight: float = 0.2,
    ) -> None:
        self.db = db
        self.cache = cache
        self.enabled = enabled
        self.radius_km = radius_km
        self.weight = weight

    def set_user_location(self, user_id: uuid.UUID, where: LocationIn) -> User:
        with session_scope(self.db) as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFoundError("user", user_id)
            user.latitude, user.longitude = where.latitude, where.longitude
            session.add(user)
        invalidate_user(self.cache, user_id)  # their cached lists may rank by distance
        return user

    def hint_for(self, user: Located) -> LocationHint | None:
        if not self.enabled or self.weight <= 0:
            return None
        if user.latitude is None or user.longitude is None:
            return None
        return LocationHint(
            latitude=user.latitude,
            longitude=user.longitude,
            radius_km=self.radius_km,
            weight=self.weight,
        )
