"""The recommendation cache from the service's side: hits served as stored bytes, and no stale
list cached by a computation that an event overtook."""

from __future__ import annotations

import json

import pytest

from backend.infra.cache import MemoryCache, RedisCache, invalidate_user, recommendations_key
from backend.recommender.strategies import RecommendRequest, Strategy
from tests.factories import build_shop


class Overtaken:
    """A strategy that lets an event's invalidation land while it ranks (the race, made
    deterministic): the list it returns was computed from data older than the event."""

    def __init__(self, inner: Strategy, during: object) -> None:
        self.inner = inner
        self.during = during
        self.armed = True

    def recommend(self, snapshot, request: RecommendRequest):  # type: ignore[no-untyped-def]
        recs = self.inner.recommend(snapshot, request)
        if self.armed:
            self.armed = False
            self.during()  # type: ignore[operator]
        return recs

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def recommender(request, components):
    if request.param == "redis":
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        cache = RedisCache.from_url(url, namespace=prefix)
    else:
        cache = MemoryCache()
    service = components.recommender
    service.cache = cache
    return service


def test_a_list_computed_before_an_invalidation_is_not_cached(recommender, db):
    shop = build_shop(db)
    alice = shop.users["alice"].id
    name = recommender.default_strategy
    real = recommender.strategies[name]
    overtaken = Overtaken(real, lambda: invalidate_user(recommender.cache, alice))
    recommender.strategies = {**recommender.strategies, name: overtaken}

    first = recommender.recommend(alice, top_n=3)
    assert first.cached is False
    assert recommender.cache.get(recommendations_key(alice), f"{name}:3") is None
    assert recommender.recommend(alice, top_n=3).cached is False  # computed again, now cached
    assert recommender.recommend(alice, top_n=3).cached is True


def test_a_hit_is_the_stored_json_with_cached_true(recommender, db):
    shop = build_shop(db)
    bob = shop.users["bob"].id
    fresh = recommender.recommend_json(bob, top_n=4)
    hit = recommender.recommend_json(bob, top_n=4)
    assert json.loads(fresh)["cached"] is False and json.loads(hit)["cached"] is True
    assert {**json.loads(fresh), "cached": True} == json.loads(hit)
    model = recommender.recommend(bob, top_n=4)
    assert model.cached is True and model.model_dump(mode="json") == json.loads(hit)
