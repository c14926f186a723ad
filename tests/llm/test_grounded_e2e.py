"""``GET /recommend`` with an LLM configured, end to end through the real SDK and HTTP: the
prompt carries numbered, dated facts about the past items behind each product, and the
checked reasons that ship name those items."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from backend.config import PROJECT_ROOT, load_settings
from backend.main import create_app
from backend.wiring import Components, build_components
from tests.factories import Shop, build_shop
from tests.llm.fake_openai_server import FakeOpenAI


@pytest.fixture
def shop(db: Engine) -> Shop:
    return build_shop(db)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


@pytest.fixture
def e2e(
    tmp_path: Path, database_url: str, db: Engine, shop: Shop
) -> Iterator[tuple[TestClient, Components, FakeOpenAI]]:
    with FakeOpenAI() as server:
        server.mode = "grounded"
        settings = load_settings(
            _env_file=None,
            data_dir=tmp_path,
            database_url=database_url,
            snapshot_refresh_seconds=0,
            prompts_dir=PROJECT_ROOT / "prompts",
            openai_api_key="sk-e2e",
            openai_base_url=server.base_url,
            llm_model="e2e-model",
            llm_deadline_seconds=8,
            llm_max_attempts=2,
        )
        components = build_components(settings)
        with TestClient(create_app(components=components)) as client:
            yield client, components, server
        components.db.dispose()


@pytest.mark.parametrize("algorithm", ["weighted", "rules", "hybrid"])
def test_reasons_name_the_concrete_past_items_behind_each_product(e2e, shop, algorithm):
    client, _, server = e2e
    alice = shop.users["alice"].id
    body = client.get(f"/recommend/{alice}", params={"top_n": 3, "algorithm": algorithm}).json()
    assert body["explanation_source"] == "llm", body.get("fallback_reason")
    user_prompt = server.requests[-1]["messages"][1]["content"]
    assert "F1: you bought the Studio Headphones 3 days ago" in user_prompt
    text = body["llm_explanation"]
    for item in body["recommended_products"]:
        behind = [p["product_name"] for p in item["evidence"]["because_of"]]
        if behind:  # the reason for this product names one of its past items
            line = next(li for li in text.splitlines() if li.startswith(f"- {item['name']}"))
            assert any(name in line for name in behind), line
    assert "Since you bought the Studio Headphones 3 days ago" in text
    request = server.requests[-1]
    assert request["response_format"]["type"] == "json_schema"
    assert request["max_tokens"] > 150
