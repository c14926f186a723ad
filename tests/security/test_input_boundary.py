"""Hostile input at the boundary: every text field of every write route refuses control and
bidi-override characters, links are http(s) or paths, integers stay in range, timestamps are
ISO 8601 text within the horizon, and an unexpected error is still our JSON with our headers.

The text tests are generated: every forbidden character × every text field (body and query)
of every route that takes text, each one asserted to be a 422 naming the field, and nothing
stored.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from backend.adapters import default_adapters
from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import make_engine
from backend.db.models import Interaction, Product
from backend.main import create_app
from backend.wiring import Components, build_components
from tests.factories import Shop, build_shop
from tests.recommender.fakes import FakeEmbedder

PASSWORD = "correct horse battery staple"
CONTROLS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]]
BIDI = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
FORBIDDEN = CONTROLS + BIDI
LAYOUT = {"\t", "\n", "\r"}  # allowed in prose (descriptions, chat messages, templates)


@pytest.fixture
def secured(
    tmp_path: Path, migrated_sqlite_url: str
) -> Iterator[tuple[TestClient, Components, Shop, dict[str, str]]]:
    url = migrated_sqlite_url
    engine = make_engine(url)
    shop = build_shop(engine)
    engine.dispose()
    config = load_settings(
        _env_file=None,
        data_dir=tmp_path,
        database_url=url,
        snapshot_refresh_seconds=0,
        prompts_dir=PROJECT_ROOT / "prompts",
        auth_mode="on",
        jwt_secret="s" * 40,
    )
    adapters = dataclasses.replace(default_adapters(config), embedder=FakeEmbedder(dim=1024))
    components = build_components(config, adapters)
    components.auth.create_admin("ada", PASSWORD, "admin")
    with TestClient(create_app(components=components)) as client:
        token = client.post("/auth/login", json={"username": "ada", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        yield client, components, shop, headers
    components.db.dispose()


PRODUCT = {"name": "Lamp", "category": "Home", "price": "19.90", "quantity": 3}


def _cases(shop: Shop) -> list[tuple[str, str, str, Callable[[str], dict[str, Any]], bool]]:
    """(label, method, path, request kwargs for a text, prose?) for every text field."""
    user = str(shop.users["alice"].id)
    product = str(next(iter(shop.products.values())).id)

    def body(base: dict[str, Any], put: Callable[[dict[str, Any], str], None]) -> Callable:
        def make(text: str) -> dict[str, Any]:
            payload = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
            put(payload, text)
            return {"json": payload}

        return make

    def field_text(name: str) -> Callable[[dict[str, Any], str], None]:
        return lambda payload, text: payload.__setitem__(name, f"a{text}b")

    def query(params: dict[str, str], name: str) -> Callable[[str], dict[str, Any]]:
        return lambda text: {"params": {**params, name: f"a{text}b"}}

    search = {"user_id": user, "action": "search", "query": "lamp"}
    experiment = {
        "name": "x",
        "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
    }

    def variant_name(payload: dict[str, Any], text: str) -> None:
        payload["variants"] = [{"name": f"a{text}", "share": 0.5}, {"name": "b", "share": 0.5}]

    cases = []
    for name, prose in [("name", False), ("category", False), ("description", True)]:
        put = field_text(name)
        cases.append((f"POST /products {name}", "POST", "/products", body(PRODUCT, put), prose))
        cases.append((f"PUT /products {name}", "PUT", f"/products/{product}", body({}, put), prose))
    cases += [
        ("POST /products tags", "POST", "/products",
         body(PRODUCT, lambda p, t: p.__setitem__("tags", ["ok", f"a{t}b"])), False),
        ("PUT /products tags", "PUT", f"/products/{product}",
         body({}, lambda p, t: p.__setitem__("tags", [f"a{t}b"])), False),
        ("POST /products image_url", "POST", "/products",
         body(PRODUCT, lambda p, t: p.__setitem__("image_url", f"/img/a{t}b.png")), False),
        ("POST /events query", "POST", "/events",
         body(search, lambda p, t: p.__setitem__("query", f"a{t}b")), False),
        ("POST /events event_id", "POST", "/events",
         body(search, lambda p, t: p.__setitem__("event_id", f"a{t}b")), False),
        ("POST /chat message", "POST", "/chat",
         body({}, lambda p, t: p.__setitem__("message", f"lamps{t}please")), True),
        ("POST /chat remove_filter", "POST", "/chat",
         body({}, lambda p, t: p.__setitem__("remove_filter",
                                             {"field": "category", "value": f"a{t}b"})), False),
        ("POST /auth/login username", "POST", "/auth/login",
         body({"password": "x"}, lambda p, t: p.__setitem__("username", f"ada{t}")), False),
        ("POST /admin/api-keys name", "POST", "/admin/api-keys",
         body({"scopes": ["events:write"]}, lambda p, t: p.__setitem__("name", f"a{t}b")), False),
        ("PUT /admin/prompts source", "PUT", "/admin/prompts/explanation.j2",
         body({}, lambda p, t: p.__setitem__("source", f"Hi{t}there")), True),
        ("PUT /admin/prompts author", "PUT", "/admin/prompts/explanation.j2",
         body({"source": "Hi"}, lambda p, t: p.__setitem__("author", f"a{t}b")), False),
        ("PUT /admin/prompts note", "PUT", "/admin/prompts/explanation.j2",
         body({"source": "Hi"}, lambda p, t: p.__setitem__("note", f"a{t}b")), False),
        ("POST /admin/prompts preview", "POST", "/admin/prompts/explanation.j2/preview",
         body({}, lambda p, t: p.__setitem__("source", f"Hi{t}there")), True),
        ("POST /experiments name", "POST", "/experiments",
         body(experiment, lambda p, t: p.__setitem__("name", f"a{t}b")), False),
        ("POST /experiments description", "POST", "/experiments",
         body(experiment, lambda p, t: p.__setitem__("description", f"a{t}b")), True),
        ("POST /experiments variant", "POST", "/experiments", body(experiment, variant_name),
         False),
        ("GET /products q", "GET", "/products", query({}, "q"), False),
        ("GET /products category", "GET", "/products", query({}, "category"), False),
        ("GET /search q", "GET", "/search", query({}, "q"), False),
        ("GET /search category", "GET", "/search", query({"q": "lamp"}, "category"), False),
        ("GET /users q", "GET", "/users", query({}, "q"), False),
        ("GET /recommend category", "GET", f"/recommend/{user}", query({}, "category"), False),
        ("GET /recommend algorithm", "GET", f"/recommend/{user}", query({}, "algorithm"), False),
    ]  # fmt: skip
    return cases


def test_every_text_field_refuses_every_control_and_bidi_character(secured):
    client, components, shop, headers = secured
    with Session(components.db) as session:
        before = (
            session.exec(select(func.count()).select_from(Product)).one(),
            session.exec(select(func.count()).select_from(Interaction)).one(),
        )
    refused = accepted = 0
    wrong: list[str] = []
    for label, method, path, make, prose in _cases(shop):
        for char in FORBIDDEN:
            if prose and char in LAYOUT:
                continue
            r = client.request(method, path, headers=headers, **make(char))
            if r.status_code == 422 and ("U+" in r.text or "image_url" in r.text):
                refused += 1
            else:
                accepted += 1
                wrong.append(f"{label} U+{ord(char):04X}: {r.status_code} {r.text[:120]}")
    assert not wrong, f"{accepted} accepted:\n" + "\n".join(wrong[:40])
    assert refused >= 25 * 70
    with Session(components.db) as session:
        after = (
            session.exec(select(func.count()).select_from(Product)).one(),
            session.exec(select(func.count()).select_from(Interaction)).one(),
        )
    assert after == before  # nothing half-written


def test_prose_keeps_tabs_and_line_breaks(secured):
    client, _, _, headers = secured
    r = client.post(
        "/products", headers=headers, json={**PRODUCT, "description": "One\n\tTwo\r\nThree"}
    )
    assert r.status_code == 201, r.text


def test_a_batch_rejects_only_the_event_with_a_control_character(secured):
    client, _, shop, headers = secured
    user = str(shop.users["alice"].id)
    events = [
        {"user_id": user, "action": "search", "query": "lamp", "event_id": f"e{i}{c}"}
        for i, c in enumerate(["", "\x00", "\u202e"])
    ]
    body = client.post("/events/batch", headers=headers, json={"events": events}).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "rejected"]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "//evil.example/x.png",
        "/\\evil.example/x.png",
        "file:///etc/passwd",
        "http://",
        "http:/x",
        " javascript:alert(1)",
        "",
    ],
)
def test_image_url_takes_only_http_or_a_path(secured, url):
    client, _, _, headers = secured
    r = client.post("/products", headers=headers, json={**PRODUCT, "image_url": url})
    assert r.status_code == 422, r.text
    assert "image_url" in r.json()["detail"]


@pytest.mark.parametrize(
    "url", ["https://cdn.example.com/a.png?w=200", "http://shop.local/x.svg", "/images/a.svg"]
)
def test_image_url_accepts_http_and_paths(secured, url):
    client, _, _, headers = secured
    r = client.post("/products", headers=headers, json={**PRODUCT, "image_url": url})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("quantity", [2**31, 2**63 - 1, 2**63, 2**64, 10**30, -1])
def test_quantity_out_of_range_is_a_422_on_create_and_update(secured, quantity):
    client, _, shop, headers = secured
    product = next(iter(shop.products.values())).id
    created = client.post("/products", headers=headers, json={**PRODUCT, "quantity": quantity})
    updated = client.put(f"/products/{product}", headers=headers, json={"quantity": quantity})
    for r in (created, updated):
        assert r.status_code == 422, r.text
        assert "quantity" in r.json()["detail"]


@pytest.mark.parametrize("field", ["name", "description", "category", "price", "quantity"])
def test_null_for_a_field_a_product_must_have_is_a_422_and_changes_nothing(secured, field):
    """Found by the stateful fuzzer: ``{"name": null}`` reached the database as a NOT NULL
    violation (500)."""
    client, _, shop, headers = secured
    product = next(iter(shop.products.values())).id
    before = client.get(f"/products/{product}", headers=headers).json()
    r = client.put(f"/products/{product}", headers=headers, json={"tags": ["changed"], field: None})
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert client.get(f"/products/{product}", headers=headers).json() == before


def test_null_clears_what_a_product_may_lack(secured):
    client, _, shop, headers = secured
    product = next(iter(shop.products.values())).id
    r = client.put(
        f"/products/{product}",
        headers=headers,
        json={"image_url": None, "latitude": None, "longitude": None},
    )
    assert r.status_code == 200, r.text
    assert r.json()["image_url"] is None and r.json()["name"]


def test_largest_quantity_is_stored(secured):
    client, _, _, headers = secured
    r = client.post("/products", headers=headers, json={**PRODUCT, "quantity": 2**31 - 1})
    assert r.status_code == 201, r.text


def test_an_unexpected_error_is_json_with_request_id_and_security_headers(secured):
    _, components, _, _ = secured
    app = create_app(components=components)

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    from backend.api.policies import POLICIES, PUBLIC

    POLICIES[("GET", "/boom")] = PUBLIC
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/boom", headers={"X-Request-ID": "trace-me-123"})
    finally:
        del POLICIES[("GET", "/boom")]
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "detail": "internal error; quote the request id when reporting it",
        "request_id": "trace-me-123",
    }
    assert r.headers["x-request-id"] == "trace-me-123"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "a bug" not in r.text


# --- timestamps --------------------------------------------------------------------------


def _event(shop: Shop, timestamp: object) -> dict[str, Any]:
    return {
        "user_id": str(shop.users["alice"].id),
        "action": "view",
        "product_id": str(next(iter(shop.products.values())).id),
        "timestamp": timestamp,
    }


@pytest.mark.parametrize(
    "timestamp",
    [
        0,
        1_700_000_000,
        1.5,
        True,
        "0",
        "1700000000",
        "0001-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "2000-01-01T00:00:00+00:00",
        "2999-01-01T00:00:00Z",
        "2026-01-01T00:00:00",  # no timezone
        "yesterday",
    ],
)
def test_numbers_ancient_future_or_naive_timestamps_are_refused(secured, timestamp):
    client, _, shop, headers = secured
    r = client.post("/events", headers=headers, json=_event(shop, timestamp))
    assert r.status_code == 422, r.text
    assert "timestamp" in r.json()["detail"]
    batch = client.post(
        "/events/batch", headers=headers, json={"events": [_event(shop, timestamp)]}
    )
    assert batch.json()["results"][0]["status"] == "rejected"


def test_recent_iso_timestamps_are_stored(secured):
    client, _, shop, headers = secured
    for when in [
        datetime.now(UTC) - timedelta(days=30),
        datetime.now(UTC).astimezone().replace(microsecond=0),
    ]:
        r = client.post("/events", headers=headers, json=_event(shop, when.isoformat()))
        assert r.status_code == 201, r.text
    zulu = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.post("/events", headers=headers, json=_event(shop, zulu)).status_code == 201


def test_the_age_horizon_is_configurable(tmp_path):
    config = load_settings(
        _env_file=None, data_dir=tmp_path, prompts_dir=PROJECT_ROOT / "prompts",
        event_max_age_days=10,
    )  # fmt: skip
    tracker = build_components(config).tracker
    assert tracker.max_event_age == timedelta(days=10)
    old = {"user_id": str(uuid.uuid4()), "action": "view", "product_id": str(uuid.uuid4()),
           "timestamp": (datetime.now(UTC) - timedelta(days=11)).isoformat()}  # fmt: skip
    result = tracker.track_many([old]).results[0]
    assert result.status == "rejected" and "days old" in (result.reason or "")
