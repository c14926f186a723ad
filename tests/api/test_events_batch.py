"""POST /events/batch, and what an accepted event changes downstream (embedded mode)."""

from __future__ import annotations

import uuid

from sqlmodel import Session, func, select

from backend.db.models import Interaction, UserPreferences
from tests.waiting import wait_for


def event(shop, user="bob", product="Desk Lamp", action="view", **extra):
    body = {"user_id": str(shop.users[user].id), "action": action}
    if product:
        body["product_id"] = str(shop.products[product].id)
    return body | extra


def test_batch_accepts_and_rejects_per_event(api, shop, db):
    r = api.post(
        "/events/batch",
        json={
            "events": [
                event(shop, event_id="s-1"),
                event(shop, action="fly"),
                event(shop, product_id=str(uuid.uuid4())),
                event(shop, action="search", product=None, query="desk lamp"),
                event(shop, event_id="s-1"),
                "not an object",
            ]
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["status"] for x in body["results"]] == [
        "accepted", "rejected", "rejected", "accepted", "duplicate", "rejected",
    ]  # fmt: skip
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 3)
    assert body["results"][1]["reason"].startswith("action:")
    assert "does not exist" in body["results"][2]["reason"]
    assert body["results"][0]["event_id"] == "s-1"
    assert body["results"][4]["interaction_id"] == body["results"][0]["interaction_id"]
    with Session(db) as s:
        assert (
            s.exec(select(func.count()).where(Interaction.user_id == shop.users["bob"].id)).one()
            == 2
        )


def test_batch_size_is_bounded(api, shop):
    too_many = api.post("/events/batch", json={"events": [event(shop)] * 1001})
    assert too_many.status_code == 422 and "events" in too_many.json()["detail"]
    assert api.post("/events/batch", json={"events": []}).status_code == 422
    assert api.post("/events/batch", json=[event(shop)]).status_code == 422


def test_event_ids_are_shared_by_single_and_batch_endpoints(api, shop, db):
    single = api.post("/events", json=event(shop, event_id="x-9"))
    batch = api.post("/events/batch", json={"events": [event(shop, event_id="x-9")]}).json()
    assert single.status_code == 201
    assert batch["results"][0]["status"] == "duplicate"
    assert batch["results"][0]["interaction_id"] == single.json()["interaction_id"]
    with Session(db) as s:
        assert s.get(UserPreferences, shop.users["bob"].id).event_count == 1


def test_a_batch_event_invalidates_cached_recommendations_and_explanations(api, shop, components):
    alice = shop.users["alice"].id
    url = f"/recommend/{alice}"
    assert api.get(url).json()["cached"] is False
    assert api.get(url).json()["cached"] is True
    components.cache.set(f"rec:explanations:{alice}", "v1", "text", ttl_seconds=60)
    api.post("/events/batch", json={"events": [event(shop, "alice", "Wireless Earbuds")]})
    assert components.cache.get(f"rec:explanations:{alice}", "v1") is None
    body = api.get(url).json()
    assert body["cached"] is False
    assert "Wireless Earbuds" not in [p["name"] for p in body["recommended_products"]]


def test_the_in_process_worker_precomputes_and_recommend_serves_it(api, shop, components):
    bob = shop.users["bob"].id
    components.processor.debounce = 0  # due at once (the pause before it: tests/jobs)
    r = api.post("/events", json=event(shop, action="purchase", product="Cast Iron Skillet"))
    assert r.status_code == 201
    components.stream.join()  # the background worker has handled the event
    proc = components.processor
    # and decided the list's fate at its first moment without a request (the POST may still
    # have been in flight). Not ``deferred == 0``: a list leaves the queue before it is stored.
    wait_for(
        lambda: proc.precomputed + proc.skipped_precomputes + proc.dropped_precomputes,
        "the worker stored, skipped or gave up bob's list",
    )
    assert (proc.precomputed, proc.skipped_precomputes, proc.dropped_precomputes) == (1, 0, 0)
    components.cache.delete(f"rec:recommendations:{bob}")
    recommender = components.recommender
    hits = recommender.precomputed_hits
    body = api.get(f"/recommend/{bob}").json()
    assert recommender.precomputed_hits == hits + 1
    assert body["cached"] is False
    components.cache.delete(f"rec:recommendations:{bob}")
    recommender.precompute_max_age_seconds = 0  # now the same answer, computed live
    live = api.get(f"/recommend/{bob}").json()
    assert recommender.precomputed_hits == hits + 1
    assert [(p["id"], p["score"]) for p in body["recommended_products"]] == [
        (p["id"], p["score"]) for p in live["recommended_products"]
    ]
    health = api.get("/health").json()["components"]
    assert health["worker"]["status"] == "ok" and "1 processed" in health["worker"]["detail"]
    assert "1 list(s) precomputed" in health["worker"]["detail"]
    assert health["events"]["detail"].startswith("memory: in-process queue")
