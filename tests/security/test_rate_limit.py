"""Fixed-window limits: in-process, and shared through the real Redis (with fallback)."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.security.rate_limit import MemoryRateLimiter, RateLimiter, RedisRateLimiter


def test_memory_limiter_counts_per_key_and_window():
    now = [1000.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    assert [limiter.hit("ip:a", 2, 60)[0] for _ in range(3)] == [True, True, False]
    assert limiter.hit("ip:b", 2, 60)[0] is True
    now[0] += 60
    assert limiter.hit("ip:a", 2, 60)[0] is True


def test_redis_limiter_is_shared_between_processes(redis_url, redis_prefix):
    first = RedisRateLimiter(
        redis.Redis.from_url(redis_url), MemoryRateLimiter(), prefix=redis_prefix
    )
    second = RedisRateLimiter(
        redis.Redis.from_url(redis_url), MemoryRateLimiter(), prefix=redis_prefix
    )
    assert first.hit("who:shop", 3, 60)[0] and second.hit("who:shop", 3, 60)[0]
    assert first.hit("who:shop", 3, 60)[0] is True
    allowed, retry_after = second.hit("who:shop", 3, 60)
    assert allowed is False and 0 < retry_after <= 61


def test_redis_down_falls_back_to_local_limits():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    # A fixed clock: a wall-clock minute boundary between the two hits would reset the window.
    clock = lambda: 1000.0  # noqa: E731
    limiter = RedisRateLimiter(dead, MemoryRateLimiter(clock=clock), clock=clock)
    assert [limiter.hit("ip:x", 1, 60)[0] for _ in range(2)] == [True, False]


class CountingRedis(redis.Redis):
    """A real client that counts its round trips (pipelines)."""

    round_trips = 0

    def pipeline(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.round_trips += 1
        return super().pipeline(*args, **kwargs)


def test_redis_limiter_leases_hits_but_never_allows_more_than_the_limit(redis_url, redis_prefix):
    clients = [CountingRedis.from_url(redis_url) for _ in range(2)]
    first, second = (
        RedisRateLimiter(c, MemoryRateLimiter(), prefix=redis_prefix, clock=lambda: 6000.0)
        for c in clients
    )
    # limit 500: leases of 10 hits, one round trip each
    allowed = sum(first.hit("who:big", 500, 60)[0] for _ in range(495))
    allowed += sum(second.hit("who:big", 500, 60)[0] for _ in range(20))
    allowed += sum(first.hit("who:big", 500, 60)[0] for _ in range(20))
    assert allowed == 500
    assert clients[0].round_trips == 51 and clients[1].round_trips == 1  # 50 leases, 1 refusal
    assert not second.hit("who:big", 500, 60)[0]


def test_redis_limiter_does_not_retry_a_dead_redis_on_every_hit():
    now = [1000.0]
    dead = CountingRedis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    limiter = RedisRateLimiter(dead, MemoryRateLimiter(clock=lambda: now[0]), clock=lambda: now[0])
    assert all(limiter.hit("ip:y", 100, 60)[0] for _ in range(10))
    assert dead.round_trips == 1
    now[0] += 1.5
    limiter.hit("ip:y", 100, 60)
    assert dead.round_trips == 2


# --- the limits as a client meets them: buckets, failed authentication, proxies ------------

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from backend.adapters import default_adapters  # noqa: E402
from backend.config import PROJECT_ROOT, load_settings  # noqa: E402
from backend.main import create_app  # noqa: E402
from backend.wiring import Components, build_components  # noqa: E402

PASSWORD = "correct horse battery staple"
PEER = ("203.0.113.9", 50000)  # an ordinary client on the internet


@pytest.fixture
def make_app(tmp_path: Path, migrated_sqlite_url: str) -> Iterator[Any]:
    """Builds an app with the given settings; ``client`` is the TCP peer the app sees."""
    built: list[Components] = []
    stack = contextlib.ExitStack()
    url = migrated_sqlite_url

    def make(
        client: tuple[str, int] = PEER, limiter: RateLimiter | None = None, **overrides: Any
    ) -> tuple[TestClient, Components]:
        values: dict[str, Any] = {
            "_env_file": None,
            "data_dir": tmp_path,
            "database_url": url,
            "snapshot_refresh_seconds": 0,
            "prompts_dir": PROJECT_ROOT / "prompts",
            "auth_mode": "on",
            "jwt_secret": "s" * 40,
        }
        values.update(overrides)
        config = load_settings(**values)
        # One fixed window: a wall-clock minute boundary mid-test would reset the counts.
        limiter = limiter or MemoryRateLimiter(clock=lambda: 1_000_000.0)
        adapters = dataclasses.replace(default_adapters(config), rate_limiter=limiter)
        components = build_components(config, adapters)
        built.append(components)
        test_client = stack.enter_context(
            TestClient(create_app(components=components), client=client)
        )
        return test_client, components

    yield make
    stack.close()
    for components in built:
        components.db.dispose()


def _statuses(responses: list[Any]) -> list[int]:
    return [r.status_code for r in responses]


def test_made_up_keys_are_rate_limited_per_address_with_ietf_headers(make_app):
    client, _ = make_app(auth_failures_per_minute=10)
    answers = [
        client.get("/metrics", headers={"X-API-Key": f"sw_fake{i:04d}_" + "x" * 40})
        for i in range(15)
    ]
    assert _statuses(answers) == [401] * 10 + [429] * 5
    refused = answers[-1]
    assert refused.json()["detail"].startswith("too many requests")
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["ratelimit-limit"] == "10"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 0 < int(refused.headers["ratelimit-reset"]) <= 61
    assert refused.headers["ratelimit-policy"] == "10;w=60"


def test_forged_tokens_are_rate_limited(make_app):
    client, _ = make_app(auth_failures_per_minute=5)
    statuses = [
        client.get("/admin/overview", headers={"Authorization": f"Bearer forged.{i}.token"})
        for i in range(8)
    ]
    assert _statuses(statuses) == [401] * 5 + [429] * 3


@pytest.mark.parametrize(
    "request_args",
    [
        ("GET", "/no/such/route", {}),
        (
            "POST",
            "/events",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ),
        (
            "POST",
            "/auth/login",
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
        ),
    ],
    ids=["unknown-route", "malformed-body", "undecodable-login"],
)
def test_unknown_routes_and_malformed_bodies_are_counted(make_app, request_args):
    client, _ = make_app(rate_limit_per_minute=4)
    method, path, kwargs = request_args
    statuses = _statuses([client.request(method, path, **kwargs) for _ in range(6)])
    assert 429 not in statuses[:4] and statuses[4:] == [429, 429]


def test_keys_shoppers_and_anonymous_callers_behind_one_address_have_separate_buckets(make_app):
    client, components = make_app(
        rate_limit_per_minute=3,
        rate_limit_per_key_per_minute=5,
        rate_limit_per_shopper_per_minute=4,
    )
    first = {"X-API-Key": components.auth.create_key("shop a", ["metrics:read"]).api_key}
    second = {"X-API-Key": components.auth.create_key("shop b", ["metrics:read"]).api_key}
    assert _statuses([client.get("/metrics", headers=first) for _ in range(6)]) == [200] * 5 + [429]
    # the other key and the anonymous callers behind the same address are untouched
    assert _statuses([client.get("/metrics", headers=second) for _ in range(5)]) == [200] * 5
    assert _statuses([client.get("/health") for _ in range(4)])[:3] == [200] * 3
    # key traffic never counted against the address: it is exactly used up by anonymous calls
    assert client.get("/health").status_code == 429


def test_a_shopper_token_has_its_own_bucket(make_app):
    client, components = make_app(rate_limit_per_minute=100, rate_limit_per_shopper_per_minute=3)
    minter = components.auth.authenticate_key(
        components.auth.create_key("storefront", ["shoppers:act"]).api_key
    )
    tokens = [components.auth.shopper_session(None, minter=minter).access_token for _ in range(2)]
    headers = [{"Authorization": f"Bearer {t}"} for t in tokens]
    assert _statuses([client.get("/health", headers=headers[0]) for _ in range(4)]) == [
        200,
        200,
        200,
        429,
    ]
    assert client.get("/health", headers=headers[1]).status_code == 200


def test_right_password_is_not_locked_out_by_a_few_wrong_ones(make_app):
    client, components = make_app()  # the shipped defaults
    components.auth.create_admin("ada", PASSWORD, "admin")
    wrong = [
        client.post("/auth/login", json={"username": "ada", "password": f"typo-{i}"})
        for i in range(5)
    ]
    assert _statuses(wrong) == [401] * 5
    assert (
        client.post("/auth/login", json={"username": "ada", "password": PASSWORD}).status_code
        == 200
    )


def test_guessing_one_password_is_locked_with_backoff_per_address_and_username(make_app):
    now = [1_000_000.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    client, components = make_app(
        login_attempts_per_minute=3, trusted_proxies=["203.0.113.0/24"], limiter=limiter
    )
    components.auth.create_admin("ada", PASSWORD, "admin")
    components.auth.create_admin("bob", PASSWORD, "admin")

    def login(user: str, password: str, ip: str = "198.51.100.7") -> int:
        body = {"username": user, "password": password}
        return client.post("/auth/login", json=body, headers={"X-Forwarded-For": ip}).status_code

    assert [login("ada", f"guess-{i}") for i in range(4)] == [401, 401, 401, 429]
    assert login("ada", PASSWORD) == 429  # locked for this address and username...
    assert login("bob", PASSWORD) == 200  # ...not for another username
    assert login("ada", PASSWORD, ip="198.51.100.8") == 200  # ...nor from another address
    now[0] += 60  # next minute: 3 more tries, then the 15-minute tier (9) is used up too
    assert [login("ada", f"again-{i}") for i in range(4)] == [401, 401, 401, 429]
    now[0] += 60
    assert [login("ada", f"more-{i}") for i in range(4)] == [401, 401, 401, 429]
    now[0] += 60
    refused = client.post(
        "/auth/login",
        json={"username": "ada", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.7"},
    )
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 60
    # The 15-minute window by the limiter's clock: 1,000,180 s is 620 s before it ends.
    assert refused.headers["retry-after"] == "621"


def test_loopback_demo_with_auth_off_is_not_throttled(make_app):
    client, _ = make_app(client=("127.0.0.1", 40000), auth_mode="off", rate_limit_per_minute=5)
    assert _statuses([client.get("/health") for _ in range(20)]) == [200] * 20


def test_auth_off_still_limits_other_addresses(make_app):
    client, _ = make_app(auth_mode="off", rate_limit_per_minute=5)
    assert _statuses([client.get("/health") for _ in range(6)])[-1] == 429


def test_rotating_x_forwarded_for_from_an_untrusted_peer_keeps_one_bucket(make_app):
    client, _ = make_app(client=("127.0.0.1", 40000), rate_limit_per_minute=5)  # no proxy
    statuses = [
        client.get("/health", headers={"X-Forwarded-For": f"10.0.{i}.{i}"}).status_code
        for i in range(8)
    ]
    assert statuses == [200] * 5 + [429] * 3


def test_a_trusted_proxy_forwarded_address_is_the_bucket(make_app):
    client, _ = make_app(
        client=("10.1.2.3", 40000), trusted_proxies=["10.0.0.0/8"], rate_limit_per_minute=2
    )

    def get(xff: str) -> int:
        return client.get("/health", headers={"X-Forwarded-For": xff}).status_code

    # the rightmost hop not ours is the client; what the client wrote left of it is ignored
    assert [get(f"{i}.{i}.{i}.{i}, 198.51.100.1, 10.9.9.9") for i in range(1, 4)] == [
        200,
        200,
        429,
    ]
    assert get("198.51.100.2") == 200  # another client behind the same proxy


def test_client_address_reads_forwarded_for_only_from_trusted_proxies():
    from backend.security.proxies import client_address, parse_networks

    nets = parse_networks(["10.0.0.0/8", "::1/128"])
    assert client_address("127.0.0.1", "1.2.3.4", parse_networks([])) == "127.0.0.1"
    assert client_address("127.0.0.1", "1.2.3.4", nets) == "127.0.0.1"
    assert client_address("10.0.0.1", "1.2.3.4", nets) == "1.2.3.4"
    assert client_address("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", nets) == "1.2.3.4"
    assert client_address("10.0.0.1", "10.0.0.3, 10.0.0.2", nets) == "10.0.0.3"
    assert client_address("10.0.0.1", "1.2.3.4, bogus", nets) == "10.0.0.1"
    assert client_address("::1", "2001:db8::1", nets) == "2001:db8::1"


def test_trusted_proxies_setting_refuses_a_typo():
    from backend.config import SettingsError

    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings(_env_file=None, trusted_proxies=["10.0.0.0/33"])


def test_redis_limiter_peeks_at_the_shared_count(redis_url, redis_prefix):
    clock = lambda: 7000.0  # noqa: E731
    first = RedisRateLimiter(
        redis.Redis.from_url(redis_url), MemoryRateLimiter(), prefix=redis_prefix, clock=clock
    )
    second = RedisRateLimiter(
        redis.Redis.from_url(redis_url), MemoryRateLimiter(), prefix=redis_prefix, clock=clock
    )
    assert second.peek("loginfail:60:x", 60) == 0
    first.hit("loginfail:60:x", 5, 60)
    first.hit("loginfail:60:x", 5, 60)
    assert second.peek("loginfail:60:x", 60) == 2


def test_login_lock_is_shared_through_redis(make_app, redis_url, redis_prefix):
    def limiter() -> RedisRateLimiter:
        return RedisRateLimiter(
            redis.Redis.from_url(redis_url), MemoryRateLimiter(), prefix=redis_prefix
        )

    first, components = make_app(login_attempts_per_minute=2, limiter=limiter())
    second, _ = make_app(login_attempts_per_minute=2, limiter=limiter())
    components.auth.create_admin("ada", PASSWORD, "admin")
    body = {"username": "ada", "password": "wrong"}
    assert first.post("/auth/login", json=body).status_code == 401
    assert second.post("/auth/login", json=body).status_code == 401
    assert first.post("/auth/login", json=body).status_code == 429
    assert second.post("/auth/login", json=body).status_code == 429


# --- a key's own quota --------------------------------------------------------------------


def test_a_key_with_its_own_quota_is_refused_past_it_and_clearing_it_restores_the_default(
    make_app,
):
    client, components = make_app(rate_limit_per_key_per_minute=5)
    components.auth.create_admin("ada", PASSWORD, "admin")
    small = components.auth.create_key("small", ["metrics:read"], rate_limit_per_minute=3)
    other = {"X-API-Key": components.auth.create_key("other", ["metrics:read"]).api_key}
    mine = {"X-API-Key": small.api_key}

    answers = [client.get("/metrics", headers=mine) for _ in range(4)]
    assert _statuses(answers) == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-policy"] == "3;w=60"
    assert int(refused.headers["retry-after"]) > 0
    # the other key, in the same window from the same address, has the default
    assert _statuses([client.get("/metrics", headers=other) for _ in range(6)]) == [200] * 5 + [429]

    token = client.post("/auth/login", json={"username": "ada", "password": PASSWORD})
    admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
    cleared = client.patch(
        f"/admin/api-keys/{small.id}", json={"rate_limit_per_minute": None}, headers=admin
    )
    assert cleared.status_code == 200 and cleared.json()["rate_limit_per_minute"] is None
    # at once, in the same window: 4 counted so far, the default allows a 5th
    assert _statuses([client.get("/metrics", headers=mine) for _ in range(2)]) == [200, 429]
    assert client.get("/metrics", headers=mine).headers["ratelimit-limit"] == "5"


def test_a_key_quota_above_the_default_is_honoured(make_app):
    client, components = make_app(rate_limit_per_key_per_minute=2)
    big = {
        "X-API-Key": components.auth.create_key(
            "big", ["metrics:read"], rate_limit_per_minute=6
        ).api_key
    }
    assert _statuses([client.get("/metrics", headers=big) for _ in range(7)]) == [200] * 6 + [429]


def test_a_key_quota_is_shared_through_redis(make_app, redis_url, redis_prefix):
    def limiter() -> RedisRateLimiter:
        return RedisRateLimiter(
            redis.Redis.from_url(redis_url),
            MemoryRateLimiter(),
            prefix=redis_prefix,
            clock=lambda: 9000.0,  # one window: a minute boundary would reset the count
        )

    first, components = make_app(limiter=limiter())
    second, _ = make_app(limiter=limiter())  # another process on the same database
    key = {
        "X-API-Key": components.auth.create_key(
            "s", ["metrics:read"], rate_limit_per_minute=3
        ).api_key
    }
    statuses = [(first if i % 2 else second).get("/metrics", headers=key) for i in range(4)]
    assert _statuses(statuses) == [200, 200, 200, 429]
