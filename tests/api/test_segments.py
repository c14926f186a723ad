"""Segments and location through the service and the API, on the tiny shop in a real database.

The shop: alice (audio and accessories), carol (one view of everything), dave (home and
kitchen), bob (nothing). With the cold-start threshold at 3 those three are clustered.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from backend.db.engine import session_scope
from backend.db.models import Interaction
from backend.infra.stream import InProcessEventStream
from backend.jobs.events import EventProcessor
from backend.main import create_app
from backend.wiring import build_components
from tests.factories import make_event, make_user


def test_segments_are_empty_until_computed(api):
    r = api.get("/analytics/segments")
    assert r.status_code == 200
    assert r.json() == {"items": [], "computed_at": None}


def test_recomputed_segments_are_listed_per_the_contract(api, components):
    before = api.get("/health").json()["components"]["segments"]
    assert before == {"status": "ok", "detail": before["detail"]}
    assert before["detail"].startswith("k-means: not computed yet")
    report = components.segments.recompute()
    health = api.get("/health").json()["components"]["segments"]["detail"]
    assert f"{report.k} segments over 3 shoppers" in health
    assert report.k >= 2 and report.users == 3  # alice, carol, dave; bob has no signal
    body = api.get("/analytics/segments").json()
    assert body["computed_at"] is not None
    assert [s["segment"] for s in body["items"]] == list(range(report.k))
    assert sum(s["size"] for s in body["items"]) == 3
    for s in body["items"]:
        assert set(s) == {"segment", "label", "size", "top_categories", "avg_price"}
        categories, price = s["label"].split(" · ")[:2]
        assert set(categories.split(" & ")) <= set(s["top_categories"])
        assert price in ("budget", "mid-range", "premium")
        assert s["avg_price"] > 0
    # Recomputing replaces the run: same answer, nothing doubled.
    components.segments.recompute()
    again = api.get("/analytics/segments").json()
    assert [s["label"] for s in again["items"]] == [s["label"] for s in body["items"]]


def test_the_gdpr_export_names_the_shoppers_segment(api, components, shop):
    alice, bob = shop.users["alice"].id, shop.users["bob"].id
    assert api.get(f"/users/{alice}/export").json()["segment"] is None  # not yet computed
    components.segments.recompute()
    listed = {s["segment"]: s["label"] for s in api.get("/analytics/segments").json()["items"]}
    placed = api.get(f"/users/{alice}/export").json()["segment"]
    assert placed is not None and listed[placed["segment"]] == placed["label"]
    assert api.get(f"/users/{bob}/export").json()["segment"] is None  # too little signal


def test_a_cold_start_user_gets_shoppers_like_you(api, components, shop, db):
    components.segments.recompute()
    erin = make_user("erin", "Erin Ode")
    with session_scope(db) as session:
        session.add(erin)
        session.flush()
        session.add(make_event(erin, shop.products["Cast Iron Skillet"], "view", 1))
    body = api.get(f"/recommend/{erin.id}", params={"top_n": 3}).json()
    first = body["recommended_products"][0]
    segment = first["evidence"]["segment"]
    assert segment is not None and segment["shoppers"] >= 1
    assert first["evidence"]["sources"][0]["name"] == "segment"
    assert f"shoppers like you ({segment['label']})" in body["llm_explanation"]
    assert "Cast Iron Skillet" not in [p["name"] for p in body["recommended_products"]]


def test_a_user_without_any_signal_gets_global_popularity(api, components, shop):
    components.segments.recompute()
    body = api.get(f"/recommend/{shop.users['bob'].id}", params={"top_n": 3}).json()
    evidence = [p["evidence"] for p in body["recommended_products"]]
    assert all(e["segment"] is None for e in evidence)
    assert [e["sources"][0]["name"] for e in evidence] == ["popularity"] * 3


def test_the_worker_recomputes_after_the_threshold(components, shop):
    calls: list[int] = []
    processor = EventProcessor(
        db=components.db,
        recommender=components.recommender,
        top_n=5,
        retrain_threshold=0,
        segments=lambda: calls.append(1),
        segment_threshold=3,
    )
    stream = components.stream
    assert isinstance(stream, InProcessEventStream)
    t0 = datetime.now(UTC) - timedelta(hours=1)

    def post(*products: str) -> None:
        body = [
            {
                "user_id": str(shop.users["bob"].id),
                "action": "view",
                "product_id": str(shop.products[p].id),
                "timestamp": (t0 + timedelta(seconds=i)).isoformat(),
            }
            for i, p in enumerate(products)
        ]
        assert components.tracker.track_many(body).accepted == len(products)

    post("Desk Lamp", "Phone Case")
    assert processor.process(stream.take(100, timeout=0)).segments is None
    post("Travel Charger")
    assert processor.process(stream.take(100, timeout=0)).segments == "done"
    assert calls == [1]


# --- location: validation at the API edge ----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"latitude": 91, "longitude": 0},
        {"latitude": -90.5, "longitude": 0},
        {"latitude": 0, "longitude": 180.01},
        {"latitude": 10, "longitude": None},
        {"latitude": 10},
        {"latitude": "north", "longitude": 2},
    ],
)
def test_bad_user_coordinates_are_422(api, shop, body):
    r = api.put(f"/users/{shop.users['alice'].id}/location", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_user_coordinates_are_stored_and_cleared(api, shop):
    url = f"/users/{shop.users['alice'].id}/location"
    r = api.put(url, json={"latitude": 48.8566, "longitude": 2.3522})
    assert r.status_code == 200
    assert (r.json()["latitude"], r.json()["longitude"]) == (48.8566, 2.3522)
    assert api.get(f"/users/{shop.users['alice'].id}").json()["latitude"] == 48.8566
    cleared = api.put(url, json={"latitude": None, "longitude": None}).json()
    assert (cleared["latitude"], cleared["longitude"]) == (None, None)


def test_unknown_user_location_is_404(api):
    r = api.put(
        "/users/00000000-0000-0000-0000-000000000000/location",
        json={"latitude": 1, "longitude": 1},
    )
    assert r.status_code == 404


PRODUCT = {"name": "Corner Shop Lamp", "category": "Home", "price": "20.00", "quantity": 2}


@pytest.mark.parametrize(
    "extra",
    [{"latitude": 100, "longitude": 0}, {"latitude": 0, "longitude": -181}, {"latitude": 5}],
)
def test_bad_product_coordinates_are_422_and_nothing_is_written(api, extra):
    before = api.get("/products").json()["total"]
    r = api.post("/products", json={**PRODUCT, **extra})
    assert r.status_code == 422, r.text
    assert api.get("/products").json()["total"] == before


def test_product_coordinates_are_stored_and_patched_together(api, shop):
    r = api.post("/products", json={**PRODUCT, "latitude": 48.86, "longitude": 2.35})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert (r.json()["latitude"], r.json()["longitude"]) == (48.86, 2.35)
    assert api.put(f"/products/{pid}", json={"longitude": 3.0}).status_code == 422
    moved = api.put(f"/products/{pid}", json={"latitude": 45.76, "longitude": 4.84})
    assert moved.status_code == 200
    assert moved.json()["latitude"] == 45.76
    assert api.put(f"/products/{pid}", json={"name": "Renamed"}).json()["latitude"] == 45.76


def test_the_boost_reaches_recommendations_when_on(api, components, settings, shop, db):
    """With LOCATION_BOOST on, a cold user near a shop selling a product sees it first;
    with it off (the ``api`` fixture's app), the same data does not lift the product."""
    pid = api.post("/products", json={**PRODUCT, "latitude": 48.8666, "longitude": 2.3522}).json()[
        "id"
    ]
    pid = uuid.UUID(pid)
    bob = shop.users["bob"].id
    api.put(f"/users/{bob}/location", json={"latitude": 48.8566, "longitude": 2.3522})
    with session_scope(db) as session:  # a view: the boost lifts items that score at all
        session.add(Interaction(user_id=shop.users["carol"].id, product_id=pid, action="view"))
    boosted = settings.model_copy(
        update={"location_boost": True, "location_radius_km": 10, "location_boost_weight": 5.0}
    )
    on = build_components(boosted)
    with TestClient(create_app(components=on)) as client:
        body = client.get(f"/recommend/{bob}", params={"top_n": 3}).json()
    on.db.dispose()
    items = body["recommended_products"]
    assert items[0]["id"] == str(pid), [p["name"] for p in items]
    assert items[0]["evidence"]["nearby"]["distance_km"] == pytest.approx(1.1, abs=0.05)
    assert "near you (1.1 km)" in body["llm_explanation"]
    components.snapshots.invalidate()
    off = api.get(f"/recommend/{bob}", params={"top_n": 3}).json()["recommended_products"]
    assert str(pid) not in [p["id"] for p in off]
