from __future__ import annotations

import uuid

import pytest

from tests.factories import Shop


def uid(shop: Shop, username: str) -> str:
    return str(shop.users[username].id)


def pid(shop: Shop, name: str) -> str:
    return str(shop.products[name].id)


def test_rules_worked_example_through_the_api(api, shop):
    body = api.get(f"/recommend/{uid(shop, 'alice')}", params={"algorithm": "rules"}).json()
    first = body["recommended_products"][0]
    assert first["name"] == "Wireless Earbuds"
    assert first["score"] == 16
    assert body["algorithm"] == "rules"
    lamp = [p for p in body["recommended_products"] if p["name"] == "Desk Lamp"]
    assert lamp and lamp[0]["score"] == 0  # only a popularity filler: no rule points


def test_response_shape_explanation_and_summary(api, shop):
    r = api.get(f"/recommend/{uid(shop, 'alice')}", params={"top_n": 3, "algorithm": "weighted"})
    assert r.status_code == 200
    body = r.json()
    assert body["user_id"] == uid(shop, "alice")
    assert body["user_name"] == "Alice Lee"
    assert body["explanation_source"] == "template"
    assert body["algorithm"] == "weighted"
    assert body["cached"] is False
    products = body["recommended_products"]
    assert len(products) == 3
    assert {"id", "name", "category", "price", "image_url", "score", "evidence"} <= set(products[0])
    assert products[0]["name"] == "Wireless Earbuds"
    assert products[0]["score"] == 1.0
    assert all(0.0 <= p["score"] <= 1.0 for p in products)
    text = body["llm_explanation"]
    assert text.startswith("Hi Alice Lee!")
    for p in products:
        assert p["name"] in text
    assert "Studio Headphones" in text  # the purchase that led to the earbuds
    summary = body["user_behavior_summary"]
    assert "Recently purchased: Studio Headphones" in summary
    assert "recently viewed:" in summary and '"wireless earbuds"' in summary


def test_default_algorithm_comes_from_settings(api, shop, components):
    body = api.get(f"/recommend/{uid(shop, 'alice')}").json()
    assert body["algorithm"] == components.settings.default_strategy


def test_cold_start_user_gets_popular_products(api, shop):
    body = api.get(f"/recommend/{uid(shop, 'bob')}", params={"top_n": 3}).json()
    names = [p["name"] for p in body["recommended_products"]]
    assert names == ["Desk Lamp", "Cast Iron Skillet", "Electric Kettle"]
    assert all(
        p["evidence"]["sources"][0]["name"] == "popularity" for p in body["recommended_products"]
    )
    assert "popular" in body["llm_explanation"]
    assert body["user_behavior_summary"].startswith("No activity yet")


def test_user_who_saw_everything_gets_an_empty_list_and_a_sentence(api, shop):
    body = api.get(f"/recommend/{uid(shop, 'carol')}").json()
    assert body["recommended_products"] == []
    assert "nothing new" in body["llm_explanation"]


def test_second_call_is_cached_and_an_event_invalidates_it(api, shop):
    url = f"/recommend/{uid(shop, 'alice')}"
    assert api.get(url).json()["cached"] is False
    assert api.get(url).json()["cached"] is True
    event = {
        "user_id": uid(shop, "alice"),
        "action": "view",
        "product_id": pid(shop, "Wireless Earbuds"),
    }
    assert api.post("/events", json=event).status_code == 201
    body = api.get(url).json()
    assert body["cached"] is False
    assert "Wireless Earbuds" not in [p["name"] for p in body["recommended_products"]]


def test_an_event_moves_a_cold_user_towards_its_category(api, shop):
    bob = uid(shop, "bob")
    api.post(
        "/events",
        json={"user_id": bob, "action": "purchase", "product_id": pid(shop, "Cast Iron Skillet")},
    )
    body = api.get(f"/recommend/{bob}", params={"top_n": 1, "algorithm": "weighted"}).json()
    assert body["recommended_products"][0]["name"] == "Electric Kettle"  # same category
    assert body["recommended_products"][0]["evidence"]["matched_categories"][0]["name"] == "Kitchen"


@pytest.mark.parametrize(
    ("path", "params", "status", "needle"),
    [
        ("/recommend/{missing}", {}, 404, "not found"),
        ("/recommend/not-a-uuid", {}, 422, "path parameter user_id"),
        ("/recommend/{alice}", {"top_n": 0}, 422, "top_n"),
        ("/recommend/{alice}", {"top_n": 51}, 422, "top_n"),
        ("/recommend/{alice}", {"top_n": "five"}, 422, "top_n"),
        ("/recommend/{alice}", {"algorithm": "magic"}, 422, "unknown algorithm"),
    ],
)
def test_bad_recommend_requests_are_4xx_with_a_message(api, shop, path, params, status, needle):
    url = path.format(missing=uuid.uuid4(), alice=uid(shop, "alice"))
    r = api.get(url, params=params)
    assert r.status_code == status
    assert needle in r.json()["detail"]


def test_every_strategy_is_selectable(api, shop):
    for name in ("rules", "weighted", "popularity"):
        body = api.get(f"/recommend/{uid(shop, 'alice')}", params={"algorithm": name}).json()
        assert body["algorithm"] == name
        assert all(p["evidence"]["strategy"] == name for p in body["recommended_products"])


def test_empty_catalog_answers_with_an_empty_list(client, db):
    from backend.db.engine import session_scope
    from tests.factories import make_user

    user = make_user("lonely")
    with session_scope(db) as s:
        s.add(user)
    body = client.get(f"/recommend/{user.id}").json()
    assert body["recommended_products"] == []
    assert body["explanation_source"] == "template"
    assert client.get("/products").json() == {"items": [], "total": 0, "limit": 20, "offset": 0}


def test_a_new_product_reaches_recommendations_after_a_snapshot_refresh(api, shop, db, components):
    from backend.db.engine import session_scope
    from tests.factories import make_product

    with session_scope(db) as s:
        s.add(
            make_product("Noise Cancelling Headphones", "Electronics", ["audio", "wireless"], "99")
        )
    assert components.snapshots.refresh_if_stale() is True
    body = api.get(f"/recommend/{uid(shop, 'alice')}", params={"algorithm": "rules"}).json()
    assert "Noise Cancelling Headphones" in [p["name"] for p in body["recommended_products"]]


@pytest.mark.parametrize("algorithm", ["hybrid", "weighted", "rules"])
def test_recommend_filters_category_price_and_stock(api, shop, algorithm):
    url = f"/recommend/{uid(shop, 'alice')}"
    kitchen = api.get(url, params={"algorithm": algorithm, "category": "Kitchen"}).json()
    assert {p["category"] for p in kitchen["recommended_products"]} == {"Kitchen"}
    in_stock = api.get(
        url, params={"algorithm": algorithm, "category": "Kitchen", "in_stock": True}
    ).json()
    assert [p["name"] for p in in_stock["recommended_products"]] == ["Cast Iron Skillet"]
    cheap = api.get(url, params={"algorithm": algorithm, "max_price": 30}).json()
    assert cheap["recommended_products"]
    assert all(float(p["price"]) <= 30 for p in cheap["recommended_products"])
    unfiltered = api.get(url, params={"algorithm": algorithm}).json()
    assert unfiltered["cached"] is False  # a filtered answer is cached under its own key
    bad = api.get(url, params={"min_price": 50, "max_price": 10})
    assert bad.status_code == 422 and "min_price" in bad.json()["detail"]
