"""The dashboard's state endpoints: catalog/index/model overview, the offline evaluation report,
and what a dashboard login opens when the loopback demo runs with authentication off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.main import create_app
from backend.recommender.evaluation.metrics import Metrics
from backend.recommender.evaluation.report import as_json, markdown
from backend.recommender.evaluation.runner import Report, Row
from backend.services.admin_status import parse_markdown
from backend.wiring import Components, build_components
from tests.factories import Shop

PASSWORD = "correct horse battery staple"


def metrics(hr: float, ndcg: float) -> Metrics:
    return Metrics(hr10=hr, ndcg10=ndcg, recall20=hr + 0.1, coverage=0.5, diversity=0.25, users=9)


REPORT = Report(
    dataset="Tiny",
    users=9,
    items=12,
    rows=[
        Row("popularity", True, metrics(0.1, 0.05), metrics(0.1, 0.04), "counts"),
        Row("ease", True, metrics(0.3, 0.2), metrics(0.3, 0.2), "lambda=10"),
        Row("hybrid", False, metrics(0.5, 0.3), metrics(0.5, 0.25), "content=0.3, cf=0.7"),
    ],
)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "bench"
    folder.mkdir()
    return folder


@pytest.fixture
def open_api(shop: Shop, settings, reports: Path) -> Iterator[tuple[TestClient, Components]]:
    """Authentication off (the loopback demo), no ADMIN_TOKEN."""
    components = build_components(settings.model_copy(update={"evaluation_dir": reports}))
    components.auth.create_admin("ada", PASSWORD, "admin")
    with TestClient(create_app(components=components)) as client:
        yield client, components
    components.db.dispose()


@pytest.fixture
def secure(shop: Shop, settings, reports: Path) -> Iterator[TestClient]:
    secured = settings.model_copy(
        update={"auth_mode": "on", "jwt_secret": SecretStr("s" * 40), "evaluation_dir": reports}
    )
    components = build_components(secured)
    components.auth.create_admin("ada", PASSWORD, "admin")
    components.auth.create_admin("eddie", PASSWORD, "editor")
    with TestClient(create_app(components=components)) as client:
        yield client
    components.db.dispose()


def login(client: TestClient, username: str) -> dict[str, str]:
    r = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_overview_counts_the_tiny_shop(open_api):
    client, _ = open_api
    body = client.get("/admin/overview").json()
    assert body["catalog"] == {
        "products": 8, "in_stock": 7, "categories": 4, "users": 4, "interactions": 22
    }  # fmt: skip
    assert body["snapshot"]["products"] == 8 and body["snapshot"]["version"]
    assert body["index"] == []  # nothing indexed here
    # The warm start trains the collaborative models once (transitions included), on this shop.
    assert [m["n_items"] for m in body["models"]] in ([], [8])
    assert body["explanations"].startswith("template")


def test_evaluation_reads_the_json_the_evaluate_command_writes(open_api, reports):
    client, _ = open_api
    assert client.get("/admin/evaluation").status_code == 404
    (reports / "evaluation.json").write_text(as_json(REPORT, "shopwise evaluate --dataset t"))
    body = client.get("/admin/evaluation").json()
    assert body["source"] == "bench/evaluation.json"
    assert body["dataset"] == "Tiny" and body["users"] == 9 and body["items"] == 12
    assert [r["strategy"] for r in body["rows"]] == ["popularity", "ease", "hybrid"]
    hybrid = body["rows"][2]
    assert hybrid["kind"] == "ours" and hybrid["test_ndcg10"] == 0.25
    assert hybrid["valid_ndcg10"] == 0.3 and hybrid["params"] == "content=0.3, cf=0.7"
    assert body["headline"].startswith("Hybrid test NDCG@10 0.2500 = 1.250× the best of ease")


def test_an_older_markdown_only_report_gives_the_same_table(open_api, reports):
    client, _ = open_api
    (reports / "EVALUATION.md").write_text(markdown(REPORT, "shopwise evaluate --dataset t"))
    from_markdown = client.get("/admin/evaluation").json()
    (reports / "evaluation.json").write_text(as_json(REPORT, "shopwise evaluate --dataset t"))
    from_json = client.get("/admin/evaluation").json()
    assert from_markdown["source"] == "bench/EVALUATION.md"
    assert from_markdown["rows"] == from_json["rows"]
    assert from_markdown["headline"] == from_json["headline"]
    assert from_markdown["command"] == "shopwise evaluate --dataset t"


def test_the_committed_evaluation_report_parses() -> None:
    from backend.config import PROJECT_ROOT

    text = (PROJECT_ROOT / "bench" / "EVALUATION.md").read_text(encoding="utf-8")
    report = parse_markdown(text, "bench/EVALUATION.md")
    assert "hybrid" in [r.strategy for r in report.rows] and len(report.rows) >= 5
    assert report.users and report.items and report.headline


def test_with_auth_off_a_dashboard_login_opens_the_prompt_api(open_api):
    client, _ = open_api
    refused = client.get("/admin/prompts", headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 403
    assert client.get("/admin/prompts").status_code == 403
    assert client.get("/admin/prompts", headers=login(client, "ada")).status_code == 200


def test_roles_with_auth_on(secure, reports):
    (reports / "evaluation.json").write_text(as_json(REPORT, "c"))
    admin, editor = login(secure, "ada"), login(secure, "eddie")
    assert secure.get("/admin/overview", headers=editor).status_code == 200
    assert secure.get("/admin/evaluation", headers=editor).status_code == 403
    assert secure.get("/admin/evaluation", headers=admin).status_code == 200
    assert json.loads(secure.get("/admin/evaluation", headers=admin).text)["rows"]
