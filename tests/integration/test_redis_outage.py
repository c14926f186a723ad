"""Redis stopped and restarted while requests keep coming: answers never stop.

Runs against a redis-server of its own (the shared one on 6379 is never stopped).
"""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from backend.main import create_app
from backend.wiring import build_components
from tests.integration.conftest import redis_settings
from tests.waiting import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def test_requests_are_answered_through_a_redis_restart(
    tmp_path, postgres_url, pg_shop, redis_server, caplog
):
    settings = redis_settings(tmp_path, postgres_url, redis_server.url, "outage:")
    components = build_components(settings)
    alice, bob = pg_shop.users["alice"].id, pg_shop.users["bob"].id
    lamp = pg_shop.products["Desk Lamp"].id
    statuses: list[int] = []

    with TestClient(create_app(components=components)) as api:

        def recommend(user=alice) -> dict:
            r = api.get(f"/recommend/{user}")
            statuses.append(r.status_code)
            return r.json()

        assert recommend()["cached"] is False
        assert recommend()["cached"] is True

        redis_server.stop()
        for _ in range(5):
            assert recommend()["cached"] is False  # answered live, without cache
        r = api.post(
            "/events", json={"user_id": str(bob), "action": "view", "product_id": str(lamp)}
        )
        statuses.append(r.status_code)
        assert r.status_code == 201  # stored; its stream message waits in a buffer
        health = api.get("/health").json()
        assert health["status"] == "degraded"
        assert health["components"]["cache"]["status"] == "degraded"
        assert "unreachable" in health["components"]["cache"]["detail"]
        assert health["components"]["events"]["status"] == "degraded"
        assert health["components"]["database"]["status"] == "ok"
        assert "serving without cache" in caplog.text

        redis_server.start()  # same port, empty (no persistence)
        # Keep asking: after the short backoff the cache comes back by itself.
        wait_for(lambda: recommend()["cached"] is True, "the cache to serve again")
        wait_for(
            lambda: api.get("/health").json()["components"]["cache"]["status"] == "ok",
            "health to show the cache ok",
        )
        wait_for(
            lambda: api.get("/health").json()["components"]["events"]["status"] == "ok",
            "the buffered stream message to be sent",
        )
        assert "Redis cache is back" in caplog.text

    raw = redis.Redis.from_url(redis_server.url, decode_responses=True)
    (message,) = [m for _, m in raw.xrange("outage:shopwise:events")]
    assert message["user_id"] == str(bob)  # the event accepted during the outage
    raw.close()
    components.db.dispose()
    assert set(statuses) == {200, 201}  # every request answered
