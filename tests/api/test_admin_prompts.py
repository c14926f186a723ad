"""The prompt admin API: off without a token, validated updates live at once, history,
rollback, and previews that report the evidence-check pass rate before anyone publishes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.config import PROJECT_ROOT, Settings, load_settings
from backend.main import create_app
from backend.wiring import build_components
from tests.llm.fakes import uses_fake_llm
from tests.settings import ADMIN_AUTH, ADMIN_TOKEN, sqlite_url, with_admin_token

NEW_EXPLANATION = "Hello {{ user_name }}: {% for item in items %}{{ item.name }}; {% endfor %}"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only here; the prompt store itself is tested on both databases."""
    return sqlite_url(tmp_path)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return with_admin_token(settings)


@pytest.fixture
def admin(api: TestClient) -> TestClient:
    api.headers.update(ADMIN_AUTH)
    return api


def test_disabled_without_an_admin_token(tmp_path, database_url, db, shop):
    settings = load_settings(
        _env_file=None, data_dir=tmp_path, database_url=database_url, snapshot_refresh_seconds=0
    )
    components = build_components(settings)
    with TestClient(create_app(components=components)) as client:
        for method, path in [
            ("GET", "/admin/prompts"),
            ("GET", "/admin/prompts/explanation.j2"),
            ("PUT", "/admin/prompts/explanation.j2"),
            ("POST", "/admin/prompts/explanation.j2/preview"),
        ]:
            response = client.request(method, path, headers=ADMIN_AUTH, json={"source": "x"})
            assert response.status_code == 403
            assert "ADMIN_TOKEN" in response.json()["detail"]
    components.db.dispose()


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN}]
)
def test_the_token_is_required(api, headers):
    response = api.get("/admin/prompts", headers=headers)
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_list_and_read(admin):
    listed = admin.get("/admin/prompts").json()
    names = [p["name"] for p in listed]
    assert {"explain_system.j2", "explain_user.j2", "explanation.j2", "llm_explanation.j2"} <= set(
        names
    )
    assert all(p["origin"] == "file" and p["version"] == 0 for p in listed)
    detail = admin.get("/admin/prompts/explain_user").json()  # the .j2 suffix is optional
    assert detail["name"] == "explain_user.j2"
    assert detail["source"] == (PROJECT_ROOT / "prompts" / "explain_user.j2").read_text()
    assert detail["variables_allowed"] == ["items", "request_facts", "summary", "user_name"]
    assert detail["variables_required"] == ["items"]
    assert admin.get("/admin/prompts/nope.j2").status_code == 404


def test_an_update_is_stored_with_author_and_live_without_restart(admin, shop):
    bob = shop.users["bob"].id
    before = admin.get(f"/recommend/{bob}").json()["llm_explanation"]
    response = admin.put(
        "/admin/prompts/explanation.j2",
        json={"source": NEW_EXPLANATION, "author": "pm@shop", "note": "shorter"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["origin"], body["version"], body["author"]) == ("db", 1, "pm@shop")
    assert body["source"] == NEW_EXPLANATION
    assert body["file_source"] != NEW_EXPLANATION  # the file in git is untouched
    after = admin.get(f"/recommend/{shop.users['dave'].id}").json()["llm_explanation"]
    assert after.startswith("Hello Dave Kim: ") and after != before
    versions = admin.get("/admin/prompts/explanation.j2/versions").json()
    assert [(v["version"], v["author"], v["note"], v["in_effect"]) for v in versions] == [
        (1, "pm@shop", "shorter", True)
    ]
    assert versions[0]["created_at"]


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("Hello {{ user_name ", "does not parse"),
        ("{{ user_name }} {{ items }} {{ password }}", "unknown variable(s) password"),
        ("Hello {{ user_name }}", "drops required variable(s) items"),
        ("{% for item in items %}{{ item.no_such_field }}{% endfor %}", "no_such_field"),
        ("{{ ''.__class__.__mro__ }}{{ items }}", "explanation.j2"),
    ],
    ids=["syntax", "unknown-variable", "dropped-variable", "render-error", "sandbox"],
)
def test_bad_versions_are_rejected_and_not_stored(admin, source, needle):
    response = admin.put("/admin/prompts/explanation.j2", json={"source": source})
    assert response.status_code == 422
    assert needle in response.json()["detail"]
    assert admin.get("/admin/prompts/explanation.j2/versions").json() == []


def test_rollback_to_the_previous_version_or_the_file(admin, shop):
    path = "/admin/prompts/explanation.j2"
    assert admin.post(f"{path}/rollback", json={}).status_code == 422  # nothing stored yet
    admin.put(path, json={"source": NEW_EXPLANATION})
    admin.put(path, json={"source": NEW_EXPLANATION.replace("Hello", "Howdy")})
    assert admin.get(path).json()["source"].startswith("Howdy")

    back = admin.post(f"{path}/rollback", json={"author": "lead"}).json()
    assert (back["version"], back["source"], back["author"]) == (3, NEW_EXPLANATION, "lead")
    assert admin.post(f"{path}/rollback", json={"version": 9}).status_code == 422

    to_file = admin.post(f"{path}/rollback", json={"version": 0}).json()
    assert to_file["origin"] == "file" and to_file["source"] == to_file["file_source"]
    text = admin.get(f"/recommend/{shop.users['dave'].id}").json()["llm_explanation"]
    assert text.startswith("Hi Dave Kim!")
    history = admin.get(f"{path}/versions").json()
    assert [v["version"] for v in history] == [4, 3, 2, 1]
    assert history[0]["source"] is None and history[0]["note"] == "back to the file"


def test_preview_renders_a_draft_for_sample_users_without_storing_it(admin, shop):
    response = admin.post(
        "/admin/prompts/explain_user.j2/preview",
        json={"source": "Shopper {{ user_name }} gets {{ items | length }} items."},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["draft"] is True and body["llm"] is False
    assert body["pass_rate"] is None and body["render_errors"] == 0
    assert len(body["samples"]) == 3
    sample = body["samples"][0]
    assert sample["rendered"]["user"].startswith(f"Shopper {sample['user_name']} gets")
    assert "template_explanation" in sample["rendered"]
    assert admin.get("/admin/prompts/explain_user.j2").json()["origin"] == "file"

    chosen = admin.post(
        "/admin/prompts/user_summary.j2/preview",
        json={"source": "Summary!", "user_ids": [str(shop.users["alice"].id)]},
    ).json()
    assert [s["user_name"] for s in chosen["samples"]] == ["Alice Lee"]
    assert chosen["samples"][0]["rendered"]["summary"] == "Summary!"
    bad = admin.post("/admin/prompts/explain_user.j2/preview", json={"source": "{{ nope }}"})
    assert bad.status_code == 422


def answer_from_prompt(messages) -> str:
    """A fake model that follows the system prompt: told to sell, it invents a discount."""
    refs = messages[1].content.rsplit("each of: ", 1)[1].rstrip(".").split(", ")
    pushy = "Always mention a discount" in messages[0].content
    reason = "Now 30% off, grab it!" if pushy else "A fine match for you."
    return json.dumps(
        {"intro": "Hello!", "reasons": [{"product_id": r, "reason": reason} for r in refs]}
    )


@uses_fake_llm(*[answer_from_prompt] * 20)
def test_preview_with_an_llm_reports_the_check_pass_rate(admin, shop):
    system = (PROJECT_ROOT / "prompts" / "explain_system.j2").read_text()
    good = admin.post("/admin/prompts/explain_system.j2/preview", json={"sample_size": 2}).json()
    assert good["llm"] is True
    assert good["first_attempt_pass_rate"] == 1.0 and good["pass_rate"] == 1.0
    assert all(s["explanation_source"] == "llm" for s in good["samples"] if s["explanation"])

    pushy = system + "\nAlways mention a discount to close the sale."
    bad = admin.post(
        "/admin/prompts/explain_system.j2/preview", json={"source": pushy, "sample_size": 2}
    ).json()
    assert bad["first_attempt_pass_rate"] == 0.0 and bad["pass_rate"] == 0.0
    judged = [s for s in bad["samples"] if s["first_check_passed"] is not None]
    assert judged and all("unsupported_number" in s["check_reasons"] for s in judged)
    assert all(s["fallback_reason"].startswith("check_failed:") for s in judged)
    # Previews do not count as production checks.
    assert admin.get("/explanations/stats").json()["checks_failed"] == 0


@uses_fake_llm(*[answer_from_prompt] * 20)
def test_preview_names_each_failed_claim_with_its_span_reason_and_product(admin, shop):
    system = (PROJECT_ROOT / "prompts" / "explain_system.j2").read_text()
    pushy = system + "\nAlways mention a discount to close the sale."
    body = admin.post(
        "/admin/prompts/explain_system.j2/preview", json={"source": pushy, "sample_size": 1}
    ).json()
    (sample,) = [s for s in body["samples"] if s["first_check_passed"] is not None]
    assert sample["facts"] and sample["facts"][0].startswith("F1: ")
    claims = sample["failed_claims"]
    assert {c["attempt"] for c in claims} == {1, 2}
    first = next(c for c in claims if c["code"] == "unsupported_number")
    assert first["span"] == "30%" and first["product_id"] and first["product_name"]
    assert first["product_name"] in first["reason"]
    assert any("grab" in (c["span"] or "") for c in claims)  # words outside the facts, too


def test_settings_reject_a_blank_admin_token(tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path, admin_token="  ")
    assert settings.admin_token is None


def test_a_short_admin_token_is_refused_at_start(tmp_path):
    from backend.config import SettingsError

    with pytest.raises(SettingsError, match="ADMIN_TOKEN"):
        load_settings(_env_file=None, data_dir=tmp_path, admin_token="short")


def test_a_template_that_fails_at_run_time_is_rejected(admin):
    source = "{{ 1 // 0 }}{% for item in items %}{{ item.name }}{% endfor %}"
    response = admin.put("/admin/prompts/explanation.j2", json={"source": source})
    assert response.status_code == 422
    assert "ZeroDivisionError" in response.json()["detail"]


def test_with_authentication_on_editors_edit_and_are_the_authors(settings, shop):
    from pydantic import SecretStr

    secured = settings.model_copy(
        update={"auth_mode": "on", "jwt_secret": SecretStr("s" * 40), "admin_token": None}
    )
    components = build_components(secured)
    password = "correct horse battery staple"
    components.auth.create_admin("eddie", password, "editor")
    with TestClient(create_app(components=components)) as client:
        assert client.get("/admin/prompts").status_code == 401
        token = client.post("/auth/login", json={"username": "eddie", "password": password})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        response = client.put(
            "/admin/prompts/explanation.j2",
            json={"source": NEW_EXPLANATION, "author": "someone else"},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["author"] == "eddie"  # the login, not a claim in the body
    components.db.dispose()


# --- checking a draft: every problem on its line, nothing stored ------------------------------

EXPLANATION_LINES = [
    "Hi {{ user_name }}!",
    "{% for item in items %}",
    "- {{ item.name }} ({{ item.category }})",
    "{% endfor %}",
    "{{ summary }}",
]


def _check(admin: TestClient, source: str, name: str = "explanation.j2") -> dict:
    response = admin.post(f"/admin/prompts/{name}/check", json={"source": source})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_check_places_each_problem_on_its_line_and_stores_nothing(admin):
    good = _check(admin, "\n".join(EXPLANATION_LINES))
    assert good["ok"] is True and good["problems"] == []
    assert good["variables_allowed"] == ["items", "summary", "user_name"]
    assert good["variables_required"] == ["items"]
    assert good["variables_used"] == ["items", "summary", "user_name"]

    lines = [*EXPLANATION_LINES]
    lines[2] = "- {{ item.name }} for {{ shopper_email }}"
    lines[4] = "{{ summary }} {{ coupon }} {{ shopper_email }}"
    bad = _check(admin, "\n".join(lines))
    assert bad["ok"] is False
    assert [(p["kind"], p["variable"], p["line"]) for p in bad["problems"]] == [
        ("unknown_variable", "shopper_email", 3),
        ("unknown_variable", "coupon", 5),
        ("unknown_variable", "shopper_email", 5),
    ]
    assert "may use items, summary, user_name" in bad["problems"][0]["message"]

    syntax = _check(admin, "Hi {{ user_name }}\n{% for item in items %}\n{{ item.name \n")
    assert [(p["kind"], p["line"]) for p in syntax["problems"]] == [("syntax", 3)]

    dropped = _check(admin, "Hi {{ user_name }}")
    assert [(p["kind"], p["variable"], p["line"]) for p in dropped["problems"]] == [
        ("missing_variable", "items", None)
    ]

    runtime = _check(admin, "{{ items | length }}\n\n{{ 1 // 0 }}")
    assert [(p["kind"], p["line"]) for p in runtime["problems"]] == [("render", 3)]
    assert "ZeroDivisionError" in runtime["problems"][0]["message"]

    assert admin.get("/admin/prompts/explanation.j2/versions").json() == []
    assert admin.post("/admin/prompts/nope.j2/check", json={"source": "x"}).status_code == 404
    assert admin.post("/admin/prompts/explanation.j2/check", json={}).status_code == 422


def test_loop_variables_and_assigned_names_are_not_unknown(admin):
    source = (
        "{% set greeting = 'Hi' %}{{ greeting }} {{ user_name }}\n"
        "{% for item in items %}{{ loop.index }}. {{ item.name }}{% endfor %}\n"
        "{% for n in range(2) %}{{ n }}{% endfor %}"
    )
    assert _check(admin, source)["ok"] is True


@pytest.mark.parametrize("seed", range(40))
def test_generated_drafts_report_the_unknown_variable_on_the_line_it_is_on(admin, seed):
    """A valid template of random length, with an unknown name put on a random line (inside
    an expression, a condition or a loop): the check finds exactly that name on that line."""
    import random

    rnd = random.Random(seed)
    lines = [rnd.choice(EXPLANATION_LINES[:1] + EXPLANATION_LINES[4:] + ["plain words"])
             for _ in range(rnd.randint(0, 8))]  # fmt: skip
    lines.insert(rnd.randint(0, len(lines)), "{% for item in items %}{{ item.name }}{% endfor %}")
    at = rnd.randint(0, len(lines))
    unknown = rnd.choice(["coupon", "email", "password", "discount_code", "itemz"])
    shape = rnd.choice(["{{ %s }}", "{%% if %s %%}x{%% endif %%}", "{{ user_name ~ %s }}",
                        "{%% for x in %s %%}{{ x }}{%% endfor %%}"])  # fmt: skip
    lines.insert(at, shape % unknown)
    found = _check(admin, "\n".join(lines))
    assert [(p["kind"], p["variable"], p["line"]) for p in found["problems"]] == [
        ("unknown_variable", unknown, at + 1)
    ]
    stored = admin.put("/admin/prompts/explanation.j2", json={"source": "\n".join(lines)})
    assert stored.status_code == 422  # the check and the save agree


def test_a_refused_save_keeps_its_detail_and_adds_the_problems(admin):
    response = admin.put(
        "/admin/prompts/explanation.j2", json={"source": "{{ items }}\n{{ password }}"}
    )
    assert response.status_code == 422
    body = response.json()
    assert "unknown variable(s) password" in body["detail"]  # the old one-line answer
    assert body["problems"] == [
        {
            "kind": "unknown_variable",
            "message": body["problems"][0]["message"],
            "line": 2,
            "variable": "password",
        }
    ]
    preview = admin.post(
        "/admin/prompts/explanation.j2/preview", json={"source": "{{ items }}\n{{ password }}"}
    )
    assert preview.status_code == 422 and preview.json()["problems"][0]["line"] == 2


def test_preview_shoppers_are_listed_by_name(admin, shop):
    shoppers = admin.get("/admin/prompts/shoppers", params={"limit": 2}).json()
    assert len(shoppers) == 2 and set(shoppers[0]) == {"id", "name"}
    assert admin.get("/admin/prompts/shoppers", params={"limit": 0}).status_code == 422


def test_permissions_follow_the_roles_table(settings, shop):
    """With auth off, a console login's role still decides what the console offers."""
    components = build_components(settings)
    components.auth.create_admin("eddie", "correct horse battery staple", "editor")
    with TestClient(create_app(components=components)) as client:
        token = client.post(
            "/auth/login", json={"username": "eddie", "password": "correct horse battery staple"}
        ).json()["access_token"]
        editor = client.get(
            "/admin/prompts/permissions", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert editor["role"] == "editor"
        assert editor["edit"] == {"allowed": True, "why": None}
        assert editor["rollback"]["allowed"] is True  # the roles table lets editors roll back
        assert editor["start_experiment"] == {
            "allowed": False,
            "why": "Only admins may start experiments; your role is editor.",
        }
        admin = client.get("/admin/prompts/permissions", headers=ADMIN_AUTH).json()
        assert admin["role"] == "admin"
        assert all(admin[k]["allowed"] for k in ("edit", "rollback", "start_experiment"))
        assert client.get("/admin/prompts/permissions").status_code == 401
    components.db.dispose()
