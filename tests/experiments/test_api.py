"""The experiments and analytics API: lifecycle, errors, what a shopper is served, auth."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.errors import InvalidInputError
from backend.experiments.bucketing import assign
from backend.main import create_app
from backend.wiring import build_components

AB = {
    "name": "rules vs popularity",
    "description": "Does personalisation pay?",
    "variants": [
        {"name": "control", "share": 0.5, "strategy": "popularity"},
        {"name": "rules", "share": 0.5, "strategy": "rules"},
    ],
}


def variant_of(name: str, user_id: uuid.UUID, experiment: dict) -> str:
    shares = [v["share"] for v in experiment["variants"]]
    return experiment["variants"][assign(name, user_id, shares)]["name"]


def test_create_list_get(api):
    r = api.post("/experiments", json=AB)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "running" and created["winner"] is None
    assert created["attribution_window_hours"] == 24 and created["stopped_at"] is None
    assert created["variants"][1] == {
        "name": "rules", "share": 0.5, "strategy": "rules", "blend": None,
        "prompt_version": None, "prompt_name": None,
    }  # fmt: skip
    listing = api.get("/experiments", params={"limit": 5}).json()
    assert listing["total"] == 1 and listing["limit"] == 5 and listing["offset"] == 0
    assert listing["items"][0]["id"] == created["id"]
    assert api.get(f"/experiments/{created['id']}").json() == created
    assert api.get(f"/experiments/{uuid.uuid4()}").status_code == 404
    assert api.get(f"/experiments/{uuid.uuid4()}/report").status_code == 404
    assert api.get("/experiments/not-a-uuid").status_code == 422


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"variants": [{"name": "a", "share": 0.7}, {"name": "b", "share": 0.7}]}, "sum to 1"),
        ({"variants": [{"name": "a", "share": 0.5, "strategy": "magic"},
                       {"name": "b", "share": 0.5}]}, "unknown strategy 'magic'"),
        ({"variants": [{"name": "a", "share": 0.5, "prompt_version": 7},
                       {"name": "b", "share": 0.5}]}, "no stored version 7"),
        ({"name": " "}, "blank"),
        ({"attribution_window_hours": 0}, "attribution_window_hours"),
    ],
)  # fmt: skip
def test_bad_definitions_are_422_and_store_nothing(api, change, fragment):
    r = api.post("/experiments", json={**AB, **change})
    assert r.status_code == 422
    assert fragment in r.json()["detail"]
    assert api.get("/experiments").json()["total"] == 0


def test_conflicts_are_409(api):
    first = api.post("/experiments", json=AB).json()
    duplicate = api.post("/experiments", json=AB)
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
    second = api.post("/experiments", json={**AB, "name": "another"})
    assert second.status_code == 409 and "is running" in second.json()["detail"]
    assert api.post(f"/experiments/{first['id']}/stop").status_code == 200
    again = api.post(f"/experiments/{first['id']}/stop")
    assert again.status_code == 409 and "already stopped" in again.json()["detail"]
    assert api.post("/experiments", json={**AB, "name": "another"}).status_code == 201


def test_shoppers_are_served_their_variant_until_the_stop(api, shop):
    experiment = api.post("/experiments", json=AB).json()
    for username in ("alice", "bob", "carol", "dave"):
        user = shop.users[username].id
        expected = variant_of(AB["name"], user, experiment)
        first = api.get(f"/recommend/{user}", params={"top_n": 3}).json()
        assert first["experiment"] == {
            "id": experiment["id"], "name": AB["name"], "variant": expected
        }  # fmt: skip
        assert first["algorithm"] == ("rules" if expected == "rules" else "popularity")
        again = api.get(f"/recommend/{user}", params={"top_n": 3}).json()
        assert again["cached"] is True and again["experiment"]["variant"] == expected
    alice = shop.users["alice"].id
    chosen = api.get(f"/recommend/{alice}", params={"algorithm": "weighted"}).json()
    assert chosen["experiment"] is None and chosen["algorithm"] == "weighted"  # opted out

    api.post(f"/experiments/{experiment['id']}/stop")
    after = api.get(f"/recommend/{alice}", params={"top_n": 3}).json()
    assert after["experiment"] is None and after["cached"] is False  # the variant keys its cache
    assert after["algorithm"] == "hybrid"


def test_promote_serves_the_winner_to_everyone(api, shop):
    experiment = api.post("/experiments", json=AB).json()
    path = f"/experiments/{experiment['id']}/promote"
    missing = api.post(path, json={"variant": "nope"})
    assert missing.status_code == 422 and "control, rules" in missing.json()["detail"]
    assert api.post(path, json={}).status_code == 422
    promoted = api.post(path, json={"variant": "rules"})
    assert promoted.status_code == 200
    body = promoted.json()
    assert body["status"] == "promoted" and body["winner"] == "rules" and body["stopped_at"]
    for user in shop.users.values():
        served = api.get(f"/recommend/{user.id}", params={"top_n": 2}).json()
        assert served["algorithm"] == "rules"
        assert served["experiment"]["variant"] == "rules"
    assert api.post(path, json={"variant": "control"}).status_code == 409
    assert api.post(f"/experiments/{experiment['id']}/stop").status_code == 409
    # A new experiment takes over from the promoted one while it runs.
    api.post("/experiments", json={**AB, "name": "next"})
    served = api.get(f"/recommend/{shop.users['alice'].id}", params={"top_n": 2}).json()
    assert served["experiment"]["name"] == "next"


def test_a_blend_variant_runs_its_own_hybrid(api, shop):
    body = {
        "name": "rules-only blend",
        "variants": [
            {"name": "rules-blend", "share": 0.5, "blend": {"rules": 1.0}},
            {"name": "popular-blend", "share": 0.5, "blend": {"popularity": 1.0, "rules": 0.01}},
        ],
    }
    experiment = api.post("/experiments", json=body).json()
    alice = shop.users["alice"].id
    served = api.get(f"/recommend/{alice}", params={"top_n": 3}).json()
    assert served["algorithm"] == "hybrid"
    variant = variant_of(body["name"], alice, experiment)
    assert served["experiment"]["variant"] == variant
    first = served["recommended_products"][0]["evidence"]["sources"][0]["name"]
    assert first == ("rules" if variant == "rules-blend" else "popularity")


def test_a_pinned_prompt_version_explains_its_variant(api, shop, components):
    components.prompt_store.add(
        "explanation.j2",
        "PINNED for {{ user_name }}: {% for i in items %}{{ i.name }}; {% endfor %}",
        author="test",
    )
    components.prompt_store.add("explanation.j2", None, author="test")  # the file again
    body = {
        "name": "pinned prompt",  # splits the four shoppers 3:1
        "variants": [
            {"name": "pinned", "share": 0.5, "prompt_version": 1,
             "prompt_name": "explanation.j2"},
            {"name": "current", "share": 0.5},
        ],
    }  # fmt: skip
    experiment = api.post("/experiments", json=body)
    assert experiment.status_code == 201, experiment.text
    seen = set()
    for user in shop.users.values():
        served = api.get(f"/recommend/{user.id}", params={"top_n": 2}).json()
        variant = served["experiment"]["variant"]
        seen.add(variant)
        pinned = served["llm_explanation"].startswith("PINNED for")
        assert pinned == (variant == "pinned"), (variant, served["llm_explanation"])
        # The streamed explanation is written by the same variant's prompt.
        stream = api.get(f"/recommend/{user.id}/explanation/stream", params={"top_n": 2})
        final = json.loads(stream.text.strip().split("data: ")[-1])
        assert final["text"].startswith("PINNED for") == (variant == "pinned"), final
    assert seen == {"pinned", "current"}


def test_report_and_summary_through_the_api(api, shop, components):
    experiment = api.post("/experiments", json=AB).json()
    alice = shop.users["alice"].id
    served = api.get(f"/recommend/{alice}", params={"top_n": 3}).json()
    clicked = served["recommended_products"][0]["id"]
    components.impressions.flush()
    for action in ("click", "purchase"):
        event = {"user_id": str(alice), "action": action, "product_id": clicked}
        assert api.post("/events", json=event).status_code == 201
    report = api.get(f"/experiments/{experiment['id']}/report").json()
    assert report["experiment_id"] == experiment["id"] and report["status"] == "running"
    by_name = {v["variant"]: v for v in report["variants"]}
    assert set(by_name) == {"control", "rules"}
    mine = by_name[served["experiment"]["variant"]]
    assert mine | {"ctr_ci": None, "conversion_ci": None} == {
        "variant": served["experiment"]["variant"], "users": 1, "impressions": 3, "clicks": 1,
        "add_to_carts": 0, "purchases": 1, "ctr": 0.333333, "ctr_ci": None,
        "conversion": 1.0, "conversion_ci": None,
    }  # fmt: skip
    assert mine["ctr_ci"][0] < 0.333333 < mine["ctr_ci"][1]
    other = next(v for v in report["variants"] if v is not mine)
    assert other["impressions"] == 0 and other["ctr_ci"] == [0.0, 1.0]
    assert report["best_variant"] == mine["variant"]
    assert report["p_value"] is None and report["confident"] is False
    assert report["confidence_level"] == 0.95

    summary = api.get("/analytics/summary", params={"days": 7}).json()
    assert summary["by_strategy"] == [
        {"strategy": served["algorithm"], "impressions": 3, "clicks": 1, "ctr": 0.333333,
         "conversions": 1, "conversion_rate": 0.333333}
    ]  # fmt: skip
    assert summary["by_explanation_source"] == [
        {"source": "template", "impressions": 3, "clicks": 1, "ctr": 0.333333}
    ]
    today = datetime.now(UTC).date().isoformat()
    assert summary["daily"] == [
        {"date": today, "impressions": 3, "clicks": 1, "ctr": 0.333333, "llm_share": 0.0,
         "evidence_check_pass_rate": None}
    ]  # fmt: skip
    assert api.get("/analytics/summary", params={"days": 0}).status_code == 422
    assert "shopwise_impressions_total" in api.get("/metrics").text


def test_experiments_file_json_and_yaml(components, tmp_path):
    json_file = tmp_path / "experiments.json"
    json_file.write_text('{"experiments": [' + __import__("json").dumps(AB) + "]}")
    assert components.experiments.load_file(json_file) == [AB["name"]]
    assert components.experiments.load_file(json_file) == []  # already there: left alone
    yaml_file = tmp_path / "experiments.yaml"
    yaml_file.write_text(
        "- name: from yaml\n  variants:\n"
        "    - {name: a, share: 0.5}\n    - {name: b, share: 0.5, strategy: rules}\n"
    )
    assert components.experiments.load_file(yaml_file) == []  # AB is running: skipped
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: broken\n  variants: [{name: a, share: 2}]\n")
    with pytest.raises(InvalidInputError, match="entry 0: variants"):
        components.experiments.load_file(bad)
    with pytest.raises(InvalidInputError, match="does not parse"):
        (tmp_path / "x.json").write_text("{")
        components.experiments.load_file(tmp_path / "x.json")


def test_the_app_creates_the_file_experiments_at_start(settings, db, tmp_path):
    path = tmp_path / "experiments.json"
    path.write_text(__import__("json").dumps([AB]))
    components = build_components(settings.model_copy(update={"experiments_file": path}))
    with TestClient(create_app(components=components)) as client:
        assert client.get("/experiments").json()["items"][0]["name"] == AB["name"]
    components.db.dispose()


# --- authorisation ----------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


@pytest.fixture
def secure(shop, settings) -> Iterator[tuple[TestClient, object]]:
    secured = settings.model_copy(update={"auth_mode": "on", "jwt_secret": SecretStr("s" * 40)})
    components = build_components(secured)
    components.auth.create_admin("ada", PASSWORD, "admin")
    components.auth.create_admin("eddie", PASSWORD, "editor")
    with TestClient(create_app(components=components)) as client:
        yield client, components
    components.db.dispose()


def login(client, username):
    r = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_admins_decide_editors_read_keys_see_metrics_only(secure):
    client, components = secure
    assert client.get("/experiments").status_code == 401
    assert client.post("/experiments", json=AB).status_code == 401
    assert client.get("/analytics/summary").status_code == 401
    admin, editor = login(client, "ada"), login(client, "eddie")
    assert client.post("/experiments", json=AB, headers=editor).status_code == 403
    created = client.post("/experiments", json=AB, headers=admin)
    assert created.status_code == 201
    eid = created.json()["id"]
    assert client.get("/experiments", headers=editor).status_code == 200
    assert client.get(f"/experiments/{eid}", headers=editor).status_code == 200
    assert client.get(f"/experiments/{eid}/report", headers=editor).status_code == 200
    assert client.get("/analytics/summary", headers=editor).status_code == 200
    promote = client.post(f"/experiments/{eid}/promote", json={"variant": "rules"}, headers=editor)
    assert promote.status_code == 403
    assert client.post(f"/experiments/{eid}/stop", headers=editor).status_code == 403
    metrics_key = {"X-API-Key": components.auth.create_key("grafana", ["metrics:read"]).api_key}
    assert client.get("/analytics/summary", headers=metrics_key).status_code == 200
    assert client.get("/experiments", headers=metrics_key).status_code == 403
    assert client.post(f"/experiments/{eid}/stop", headers=admin).status_code == 200
