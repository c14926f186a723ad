from __future__ import annotations

import pytest

# A fixed id no row has (fixed so parallel test workers collect the same tests).
MISSING = "00000000-0000-4000-8000-000000000000"


def test_service_info_and_health(api):
    info = api.get("/").json()
    assert info["name"] == "Shopwise" and info["docs"] == "/docs"
    health = api.get("/health").json()
    assert health["status"] == "ok"
    expected = {"database", "index", "cache", "llm", "events", "worker", "segments", "startup"}
    assert set(health["components"]) == expected
    assert "8 products" in health["components"]["index"]["detail"]
    assert health["components"]["llm"]["detail"].startswith("template")


def test_users_are_paginated_and_never_show_password_hashes(api, shop):
    page = api.get("/users", params={"limit": 2, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert [u["username"] for u in page["items"]] == ["bob", "carol"]
    everything = api.get("/users").text + api.get(f"/users/{shop.users['alice'].id}").text
    assert "password" not in everything and "scrypt" not in everything


def test_products_filters(api):
    kitchen = api.get("/products", params={"category": "Kitchen"}).json()
    assert [p["name"] for p in kitchen["items"]] == ["Cast Iron Skillet", "Electric Kettle"]
    in_stock = api.get("/products", params={"category": "Kitchen", "in_stock": True}).json()
    assert [p["name"] for p in in_stock["items"]] == ["Cast Iron Skillet"]
    cheap = api.get("/products", params={"min_price": "20", "max_price": "35"}).json()
    assert {p["name"] for p in cheap["items"]} == {"Travel Charger", "Desk Lamp", "Electric Kettle"}
    text = api.get("/products", params={"q": "LAMP"}).json()
    assert text["total"] == 1 and text["items"][0]["tags"] == ["home", "lighting", "desk", "led"]
    literal = api.get("/products", params={"q": "100%_"}).json()
    assert literal["total"] == 0


def test_product_by_id_categories_and_image(api, shop):
    lamp = shop.products["Desk Lamp"]
    body = api.get(f"/products/{lamp.id}").json()
    assert body["name"] == "Desk Lamp" and body["price"] == "34.00" and body["in_stock"] is True
    cats = api.get("/categories").json()
    assert cats["total"] == 4
    assert {"name": "Electronics", "product_count": 3} in cats["items"]
    image = api.get(f"/images/products/{lamp.id}.svg")
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/svg+xml")
    assert "Desk Lamp" in image.text


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("/users?limit=0", 422, "query parameter limit"),
        ("/users?limit=101", 422, "query parameter limit"),
        ("/users?offset=-1", 422, "query parameter offset"),
        ("/users/not-a-uuid", 422, "path parameter user_id"),
        (f"/users/{MISSING}", 404, "not found"),
        ("/products?min_price=-1", 422, "min_price"),
        ("/products?min_price=abc", 422, "min_price"),
        ("/products?min_price=50&max_price=10", 422, "min_price must not be greater"),
        ("/products?in_stock=perhaps", 422, "in_stock"),
        ("/products?category=", 422, "category"),
        (f"/products/{MISSING}", 404, "not found"),
        ("/products/123", 422, "product_id"),
        ("/categories?limit=0", 422, "limit"),
        (f"/images/products/{MISSING}.svg", 404, "not found"),
    ],
)
def test_bad_input_gets_a_clear_4xx(api, url, status, needle):
    r = api.get(url)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_export_then_erase_a_user(api, shop, db):
    from sqlmodel import Session, select

    from backend.db.models import Interaction

    alice = shop.users["alice"].id
    export = api.get(f"/users/{alice}/export").json()
    assert export["user"]["username"] == "alice" and "password_hash" not in export["user"]
    assert len(export["interactions"]) == 5
    assert api.delete(f"/users/{alice}").status_code == 204
    assert api.get(f"/users/{alice}").status_code == 404
    assert api.get(f"/recommend/{alice}").status_code == 404
    with Session(db) as s:
        assert s.exec(select(Interaction).where(Interaction.user_id == alice)).all() == []
    assert api.delete(f"/users/{alice}").status_code == 404
