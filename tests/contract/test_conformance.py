"""The classes of conformance failure schemathesis found, one regression test each: the
OpenAPI document says what the API really does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.config import PROJECT_ROOT, load_settings
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.main import create_app
from backend.wiring import build_components


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("conformance")
    config = load_settings(
        _env_file=None, data_dir=tmp, snapshot_refresh_seconds=0,
        prompts_dir=PROJECT_ROOT / "prompts",
    )  # fmt: skip
    engine = make_engine(config.database_url)
    upgrade(engine)
    engine.dispose()
    components = build_components(config)
    with TestClient(create_app(components=components), client=("127.0.0.1", 1)) as test_client:
        yield test_client
    components.db.dispose()


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()  # type: ignore[no-any-return]


def _param(openapi: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    params = openapi["paths"][path]["get"]["parameters"]
    return next(p["schema"] for p in params if p["name"] == name)  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", ["/products", "/search", "/products/{product_id}/similar"])
def test_price_filters_are_documented_as_numbers_and_read_as_such(client, openapi, path):
    for name in ("min_price", "max_price"):
        variants = _param(openapi, path, name)["anyOf"]
        assert {v["type"] for v in variants} == {"number", "null"}  # no free-form string
    concrete = path.replace("{product_id}", str(uuid.uuid4()))
    params = {"q": "lamp"} if path == "/search" else {}
    assert client.get(concrete, params={**params, "max_price": ""}).status_code == 422
    assert client.get("/products", params={"max_price": "12.345"}).status_code == 200


def test_every_405_names_every_documented_method(client, openapi):
    for template, operations in openapi["paths"].items():
        path = template.replace("{name}", "explanation.j2")
        for key in ("user_id", "product_id", "experiment_id", "key_id"):
            path = path.replace("{" + key + "}", str(uuid.uuid4()))
        documented = {m.upper() for m in operations}
        unsupported = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in documented)
        r = client.request(unsupported, path)
        assert r.status_code == 405, (template, r.status_code)
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        assert documented <= allowed, (template, documented, allowed)
        assert r.json()["detail"] and r.headers["x-request-id"]


def test_an_unreadable_body_is_a_documented_400(client, openapi):
    r = client.post(
        "/events", content=b'{"user_id": "\xff\xfe"}', headers={"content-type": "application/json"}
    )
    assert r.status_code in (400, 422), r.text
    assert str(r.status_code) in openapi["paths"]["/events"]["post"]["responses"]
    for operations in openapi["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                assert "400" in operation["responses"]


def test_timestamps_are_documented_as_date_time_strings_only(openapi):
    schema = openapi["components"]["schemas"]["EventIn"]["properties"]["timestamp"]
    assert {v.get("type") for v in schema["anyOf"]} == {"string", "null"}
    assert any(v.get("format") == "date-time" for v in schema["anyOf"])
