"""Search, similar products, catalog writes that keep the index in step, hybrid via the API.

The app runs on the tiny shop with the fake embedder (no model load) and the real embedded
Chroma in the test's temporary folder.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlmodel import Session

from backend.adapters import default_adapters
from backend.db import crud
from tests.recommender.fakes import FakeEmbedder


@pytest.fixture
def fake() -> FakeEmbedder:
    return FakeEmbedder(dim=1024)


@pytest.fixture
def adapters(settings, fake):
    return dataclasses.replace(default_adapters(settings), embedder=fake)


@pytest.fixture
def indexed(api, components, fake):
    with Session(components.db) as session:
        products = crud.load_catalog(session=session)
    report = components.indexer.rebuild(products)
    assert report.encoded == len(products) == 8
    components.snapshots.invalidate()
    components.training.train_now(reason="test")
    return api, components, fake


def names(body):
    return [item["name"] for item in body["items"]]


def test_semantic_search_with_filters(indexed, shop):
    api, _, _ = indexed
    body = api.get("/search", params={"q": "wireless earbuds", "top_n": 3}).json()
    assert names(body)[0] == "Wireless Earbuds"
    assert body["items"][0]["similarity"] > body["items"][1]["similarity"]
    kitchen = api.get("/search", params={"q": "electric", "category": "Kitchen"}).json()
    assert set(names(kitchen)) <= {"Electric Kettle", "Cast Iron Skillet"}
    assert names(kitchen)[0] == "Electric Kettle"
    cheap = api.get("/search", params={"q": "audio", "max_price": "40"}).json()
    assert all(float(item["price"]) <= 40 for item in cheap["items"])
    bad = api.get("/search", params={"q": "x", "min_price": "9", "max_price": "1"})
    assert bad.status_code == 422


def test_similar_products(indexed, shop):
    api, _, _ = indexed
    pid = shop.products["Studio Headphones"].id
    body = api.get(f"/products/{pid}/similar", params={"top_n": 2}).json()
    assert names(body) == ["Wireless Earbuds", "Pocket Speaker"]
    stocked = api.get(f"/products/{pid}/similar", params={"in_stock": True, "top_n": 8}).json()
    assert "Electric Kettle" not in names(stocked)  # out of stock in the shop
    assert "Studio Headphones" not in names(stocked)
    missing = api.get("/products/00000000-0000-0000-0000-000000000000/similar")
    assert missing.status_code == 404


def test_product_writes_keep_the_index_in_step(indexed):
    api, components, fake = indexed
    store = components.indexer.store
    created = api.post(
        "/products",
        json={
            "name": "Noise Cancelling Headphones",
            "category": "Electronics",
            "price": "129.00",
            "quantity": 3,
            "tags": ["Audio", "wireless", "audio"],
            "description": "Over-ear, wireless.",
        },
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["tags"] == ["audio", "wireless"]
    assert store.count() == 9
    found = api.get("/search", params={"q": "noise cancelling", "top_n": 1}).json()
    assert names(found) == ["Noise Cancelling Headphones"]

    calls = len(fake.calls)
    repriced = api.put(f"/products/{product['id']}", json={"price": "99.00"})
    assert repriced.status_code == 200 and repriced.json()["price"] == "99.00"
    assert len(fake.calls) == calls  # text unchanged: no re-embedding, metadata only
    renamed = api.put(f"/products/{product['id']}", json={"name": "Studio Monitor Speakers"})
    assert renamed.status_code == 200 and len(fake.calls) == calls + 1
    found = api.get("/search", params={"q": "studio monitor speakers", "top_n": 1}).json()
    assert names(found) == ["Studio Monitor Speakers"]

    assert api.delete(f"/products/{product['id']}").status_code == 204
    assert store.count() == 8
    assert api.get(f"/products/{product['id']}").status_code == 404
    assert api.delete(f"/products/{product['id']}").status_code == 404
    assert api.put(f"/products/{product['id']}", json={"price": "1"}).status_code == 404
    bad = api.post("/products", json={"name": "", "category": "x", "price": "-1"})
    assert bad.status_code == 422


def test_hybrid_is_the_default_with_evidence(indexed, shop):
    api, _, _ = indexed
    alice = shop.users["alice"].id
    body = api.get(f"/recommend/{alice}", params={"algorithm": "hybrid", "top_n": 3}).json()
    assert body["algorithm"] == "hybrid"
    first = body["recommended_products"][0]
    assert first["name"] == "Wireless Earbuds"
    sources = {s["name"] for s in first["evidence"]["sources"]}
    assert "content" in sources
    assert first["evidence"]["similar_to"]["product_name"] in {
        "Studio Headphones",
        "Pocket Speaker",
        "Phone Case",
        "Travel Charger",
    }
    compare = api.get(f"/recommend/{alice}", params={"algorithm": "itemknn-bm25"}).json()
    assert compare["algorithm"] == "itemknn-bm25"


def test_health_shows_the_index(indexed):
    api, _, _ = indexed
    index = api.get("/health").json()["components"]["index"]
    assert index["status"] == "ok"
    assert "8 products in memory" in index["detail"]
    assert "chroma: 8 vectors (fake-1024), 8 in memory" in index["detail"]
    assert "CF models" in index["detail"]
