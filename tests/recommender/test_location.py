"""The location signal: haversine known answers, and a boost only when on and within radius."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from backend.recommender.location import distances_km, proximity
from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies import BlendConfig, BlendStrategy
from backend.recommender.strategies.base import LocationHint, RecommendRequest
from tests.recommender.conftest import NOW, event, product

PARIS = (48.8566, 2.3522)
LONDON = (51.5074, -0.1278)


def test_haversine_known_answers():
    places = [(0.0, 1.0), (0.0, 180.0), LONDON, PARIS, None]
    catalog = [
        product(f"Place {i}", "Places", ["place"])
        if place is None
        else dataclasses.replace(
            product(f"Place {i}", "Places", ["place"]), latitude=place[0], longitude=place[1]
        )
        for i, place in enumerate(places)
    ]
    snapshot = CatalogSnapshot.build(catalog, {})
    by_name = dict(zip((p.name for p in snapshot.products), range(len(catalog)), strict=True))

    def km(origin: tuple[float, float], name: str) -> float:
        return float(distances_km(snapshot, *origin)[by_name[name]])

    assert km((0, 0), "Place 0") == pytest.approx(111.195, abs=1e-3)  # a degree at the equator
    assert km((0, 0), "Place 1") == pytest.approx(math.pi * 6371.0088, rel=1e-9)
    assert km(PARIS, "Place 2") == pytest.approx(343.5, abs=0.5)
    assert km(PARIS, "Place 3") == 0.0
    assert math.isnan(km(PARIS, "Place 4"))  # no coordinates: no distance


def test_proximity_is_zero_outside_the_radius_and_without_coordinates():
    got = proximity(np.array([0.0, 5.0, 10.0, 20.0, np.nan]), 10.0)
    assert got.tolist() == [1.0, 0.5, 0.0, 0.0, 0.0]


# Three equally matching gadgets; the least popular one is sold in a shop near the user.
HISTORY_ITEM = product("Old Gadget", "Gadgets", ["gadget"])
FAR = dataclasses.replace(product("Gadget Far", "Gadgets", ["gadget"]), latitude=LONDON[0],
                          longitude=LONDON[1])  # fmt: skip
ANYWHERE = product("Gadget Anywhere", "Gadgets", ["gadget"])
NEAR = dataclasses.replace(product("Gadget Near", "Gadgets", ["gadget"]),
                           latitude=48.8666, longitude=2.3522)  # fmt: skip  # ~1.1 km north
CATALOG = [HISTORY_ITEM, FAR, ANYWHERE, NEAR]


@pytest.fixture
def snapshot() -> CatalogSnapshot:
    return CatalogSnapshot.build(CATALOG, {FAR.id: 30, ANYWHERE.id: 20, NEAR.id: 10})


def names(snapshot, recs):
    return [snapshot.products[r.index].name for r in recs]


HYBRID = BlendStrategy("hybrid", BlendConfig(weights={"rules": 1.0}))


HISTORY = (event(HISTORY_ITEM),)


def ask(snapshot, location=None, history=HISTORY):
    return HYBRID.recommend(
        snapshot, RecommendRequest(list(history), top_n=3, now=NOW, location=location)
    )


def at_paris(radius_km=10.0, weight=0.5):
    return LocationHint(latitude=PARIS[0], longitude=PARIS[1], radius_km=radius_km, weight=weight)


def test_without_location_ties_go_to_the_popular(snapshot):
    assert names(snapshot, ask(snapshot)) == ["Gadget Far", "Gadget Anywhere", "Gadget Near"]
    assert all(r.evidence.nearby is None for r in ask(snapshot))


def test_the_boost_lifts_an_item_within_the_radius_with_evidence(snapshot):
    recs = ask(snapshot, at_paris())
    assert names(snapshot, recs) == ["Gadget Near", "Gadget Far", "Gadget Anywhere"]
    near = recs[0].evidence
    assert near.nearby is not None and near.nearby.distance_km == pytest.approx(1.1, abs=0.05)
    location = next(s for s in near.sources if s.name == "location")
    assert location.detail == "near you (1.1 km)"
    assert recs[1].evidence.nearby is None  # London is far outside 10 km


def test_nothing_within_the_radius_changes_nothing(snapshot):
    far_away = LocationHint(latitude=-33.87, longitude=151.21, radius_km=50, weight=1.0)  # Sydney
    assert names(snapshot, ask(snapshot, far_away)) == names(snapshot, ask(snapshot))
    tiny_radius = at_paris(radius_km=1.0)  # the near shop is 1.1 km away
    assert names(snapshot, ask(snapshot, tiny_radius)) == names(snapshot, ask(snapshot))


def test_a_zero_weight_changes_nothing(snapshot):
    assert names(snapshot, ask(snapshot, at_paris(weight=0.0))) == names(snapshot, ask(snapshot))


def test_the_cold_start_answer_is_boosted_too(snapshot):
    plain = ask(snapshot, history=())
    assert names(snapshot, plain)[0] == "Gadget Far"
    boosted = ask(snapshot, at_paris(weight=1.0), history=())
    assert names(snapshot, boosted)[0] == "Gadget Near"
    assert boosted[0].evidence.nearby is not None
    assert {s.name for s in boosted[0].evidence.sources} == {"popularity", "location"}
