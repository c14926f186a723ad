"""The optional location signal: distances from the shopper to products, and a proximity boost.

A product with coordinates is offered at that place (a store, a pickup point, a local
seller); a product without them ships anywhere and is never boosted. The boost is linear:
1 at the shopper's position, falling to 0 at the radius, 0 beyond it.
"""

from __future__ import annotations

import math

import numpy as np

from backend.recommender.snapshot import CatalogSnapshot, FloatArray

EARTH_RADIUS_KM = 6371.0088  # the mean Earth radius (IUGG)


def distances_km(snapshot: CatalogSnapshot, latitude: float, longitude: float) -> FloatArray:
    """Great-circle (haversine) distance from the point to every product, in kilometres (NaN
    where a product has no coordinates)."""
    if snapshot.latitudes is None or snapshot.longitudes is None:
        return np.full(len(snapshot), np.nan)
    lat = np.radians(snapshot.latitudes)
    lon = np.radians(snapshot.longitudes)
    phi = math.radians(latitude)
    a = (
        np.sin((lat - phi) / 2) ** 2
        + math.cos(phi) * np.cos(lat) * np.sin((lon - math.radians(longitude)) / 2) ** 2
    )
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a))))


def proximity(distances: FloatArray, radius_km: float) -> FloatArray:
    """1 − distance/radius inside the radius, 0 outside it and where the distance is unknown."""
    with np.errstate(invalid="ignore"):
        boost = 1.0 - distances / radius_km
    return np.where(np.isfinite(boost) & (boost > 0), boost, 0.0)
