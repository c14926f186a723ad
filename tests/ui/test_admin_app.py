"""The operator console, driven by ``AppTest`` with the admin client faked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from chat_ui.admin_client import ApiError, ApiUnavailable

APP = str(Path(__file__).resolve().parents[2] / "chat_ui" / "admin.py")
EXP_ID = "7f1c0d1e-0000-4000-8000-000000000001"

EXPERIMENT = {
    "id": EXP_ID, "name": "blend-vs-popularity", "description": "Does the blend beat popularity?",
    "status": "running", "attribution_window_hours": 24, "winner": None,
    "created_at": "2025-05-01T09:00:00Z", "stopped_at": None,
    "variants": [
        {"name": "control", "share": 0.5, "strategy": "popularity", "blend": None,
         "prompt_version": None},
        {"name": "hybrid", "share": 0.5, "strategy": "hybrid", "blend": None,
         "prompt_version": None},
    ],
}  # fmt: skip
REPORT = {
    "experiment_id": EXP_ID, "status": "running", "best_variant": "hybrid", "p_value": 0.0031,
    "confident": True, "confidence_level": 0.95,
    "variants": [
        {"variant": "control", "users": 500, "impressions": 2500, "clicks": 150,
         "add_to_carts": 40, "purchases": 20, "ctr": 0.06, "ctr_ci": [0.051, 0.07],
         "conversion": 0.04, "conversion_ci": [0.026, 0.061]},
        {"variant": "hybrid", "users": 510, "impressions": 2550, "clicks": 230,
         "add_to_carts": 66, "purchases": 35, "ctr": 0.0902, "ctr_ci": [0.0797, 0.1019],
         "conversion": 0.0686, "conversion_ci": [0.0497, 0.094]},
    ],
}  # fmt: skip
HEALTH = {
    "status": "ok",
    "components": {
        "database": {"status": "ok", "detail": "sqlite, 0.4 ms"},
        "index": {"status": "ok", "detail": "120 products in memory, catalog version 7"},
        "cache": {"status": "degraded", "detail": "memory"},
        "llm": {"status": "ok", "detail": "template"},
    },
}
OVERVIEW = {
    "catalog": {"products": 120, "in_stock": 111, "categories": 8, "users": 40,
                "interactions": 2345},
    "snapshot": {"version": "7", "products": 120, "embedded": 120},
    "index": [{"collection": "products", "model_id": "models/all-MiniLM-L6-v2", "vectors": 120,
               "last_run_at": "2025-05-01T08:00:00Z"}],
    "models": [{"version": "cf-20250501-0800", "kinds": ["ease", "itemknn"], "n_users": 40,
                "n_items": 120, "n_interactions": 2345, "reason": "manual", "seconds": 1.2,
                "trained_at": "2025-05-01T08:00:00Z"}],
    "explanations": "template",
}  # fmt: skip
SUMMARY = {
    "by_strategy": [
        {"strategy": "hybrid", "impressions": 900, "clicks": 81, "ctr": 0.09, "conversions": 20,
         "conversion_rate": 0.022},
        {"strategy": "popularity", "impressions": 800, "clicks": 48, "ctr": 0.06,
         "conversions": 9, "conversion_rate": 0.011},
    ],
    "by_explanation_source": [
        {"source": "template", "impressions": 1700, "clicks": 129, "ctr": 0.0759}
    ],
    "daily": [
        {"date": "2025-05-01", "impressions": 800, "clicks": 60, "ctr": 0.075, "llm_share": 0.0,
         "evidence_check_pass_rate": 1.0},
        {"date": "2025-05-02", "impressions": 900, "clicks": 69, "ctr": 0.0767, "llm_share": 0.0,
         "evidence_check_pass_rate": 1.0},
    ],
}  # fmt: skip
SEGMENTS = {
    "items": [
        {"segment": 0, "label": "Budget electronics", "size": 14, "top_categories":
         ["Electronics"], "avg_price": 42.5},
        {"segment": 1, "label": "Home & kitchen regulars", "size": 26, "top_categories":
         ["Home", "Kitchen"], "avg_price": 31.0},
    ],
    "computed_at": "2025-05-01T07:00:00Z",
}  # fmt: skip
EVALUATION = {
    "source": "bench/EVALUATION.md", "command": "shopwise evaluate --dataset x",
    "dataset": "Scientific", "users": 8442, "items": 4385,
    "headline": "Hybrid test NDCG@10 0.1092 = 1.173× the best baseline (ease, 0.0931)",
    "rows": [
        {"strategy": "ease", "kind": "baseline", "valid_hr10": 0.13, "valid_ndcg10": 0.09,
         "valid_recall20": 0.16, "test_hr10": 0.13, "test_ndcg10": 0.0931, "test_recall20": 0.16,
         "coverage": 0.86, "diversity": 0.63, "params": "lambda=50"},
        {"strategy": "hybrid", "kind": "ours", "valid_hr10": 0.16, "valid_ndcg10": 0.1,
         "valid_recall20": 0.19, "test_hr10": 0.15, "test_ndcg10": 0.1092,
         "test_recall20": 0.19, "coverage": 0.94, "diversity": 0.51, "params": "content=0.3"},
    ],
}  # fmt: skip


FILE_SOURCE = "Hi {{ user_name }}!\n{% for item in items %}\n- {{ item.name }}\n{% endfor %}"
ALLOWED = ["items", "summary", "user_name"]
SHOPPERS = [{"id": f"u{i}", "name": n} for i, n in enumerate(["Alice", "Bob", "Cleo", "Dan"])]


class FakeAdminClient:
    """Answers like the API's admin endpoints; records every call."""

    def __init__(self, *, down: bool = False, role: str = "admin") -> None:
        self.down = down
        self.grant = role
        self.role: str | None = None
        self.username: str | None = None
        self.calls: list[tuple[Any, ...]] = []
        self.experiment = dict(EXPERIMENT)
        self.versions: list[dict[str, Any]] = [
            {"version": 2, "author": "ada", "created_at": "2025-05-01T10:00:00Z",
             "note": "shorter", "source": "Hi {{ user_name }}\n{{ items }}", "in_effect": True},
            {"version": 1, "author": "eddie", "created_at": "2025-04-30T10:00:00Z",
             "note": "first try", "source": "Hello {{ user_name }}\n{{ items }}",
             "in_effect": False},
        ]  # fmt: skip

    @property
    def logged_in(self) -> bool:
        return self.role is not None

    def _up(self) -> None:
        if self.down:
            raise ApiUnavailable("down")

    def login(self, username: str, password: str) -> str:
        self.calls.append(("login", username))
        self._up()
        if password != "correct horse battery":
            raise ApiError(401, "wrong username or password")
        self.role, self.username = self.grant, username
        return self.grant

    def logout(self) -> None:
        self.calls.append(("logout",))
        self.role = self.username = None

    def health(self) -> dict[str, Any]:
        self._up()
        return HEALTH

    def overview(self) -> dict[str, Any]:
        self._up()
        return OVERVIEW

    def experiments(self, limit: int = 100) -> list[dict[str, Any]]:
        self._up()
        return [self.experiment]

    def experiment_report(self, experiment_id: str) -> dict[str, Any]:
        self.calls.append(("report", experiment_id))
        return {**REPORT, "status": self.experiment["status"]}

    def promote(self, experiment_id: str, variant: str) -> dict[str, Any]:
        self.calls.append(("promote", experiment_id, variant))
        self.experiment.update(status="promoted", winner=variant)
        return self.experiment

    def stop_experiment(self, experiment_id: str) -> dict[str, Any]:
        self.calls.append(("stop", experiment_id))
        self.experiment.update(status="stopped")
        return self.experiment

    def analytics_summary(self, days: int = 14) -> dict[str, Any]:
        return SUMMARY

    def segments(self) -> dict[str, Any]:
        return SEGMENTS

    def _in_effect(self) -> str:
        top = self.versions[0] if self.versions else None
        return FILE_SOURCE if top is None or top["source"] is None else str(top["source"])

    def prompts(self) -> list[dict[str, Any]]:
        top = self.versions[0]
        return [{"name": "explanation.j2", "origin": "db", "version": top["version"],
                 "author": top["author"], "updated_at": top["created_at"]}]  # fmt: skip

    def prompt(self, name: str) -> dict[str, Any]:
        return {**self.prompts()[0], "source": self._in_effect(), "file_source": FILE_SOURCE,
                "variables_used": ["items", "user_name"], "variables_allowed": ALLOWED,
                "variables_required": ["items"]}  # fmt: skip

    def prompt_versions(self, name: str) -> list[dict[str, Any]]:
        return [dict(v) for v in self.versions]

    def prompt_permissions(self) -> dict[str, Any]:
        admin = self.role == "admin"
        why = None if admin else f"Only admins may start experiments; your role is {self.role}."
        return {"role": self.role, "edit": {"allowed": True, "why": None},
                "rollback": {"allowed": True, "why": None},
                "start_experiment": {"allowed": admin, "why": why}}  # fmt: skip

    def preview_shoppers(self, limit: int = 100) -> list[dict[str, Any]]:
        return SHOPPERS

    def check_prompt(self, name: str, source: str) -> dict[str, Any]:
        """Like the API: every unknown ``{{ name }}`` on its line; ``items`` is required."""
        self.calls.append(("check", name, source))
        problems = [
            {"kind": "unknown_variable", "line": n, "variable": v,
             "message": f"unknown variable '{v}'; this template may use {', '.join(ALLOWED)}"}
            for n, line in enumerate(source.split("\n"), start=1)
            for v in re.findall(r"{{\s*(\w+)", line) if v not in [*ALLOWED, "item", "loop"]
        ]  # fmt: skip
        if "items" not in source:
            problems.append({"kind": "missing_variable", "line": None, "variable": "items",
                             "message": "required variable 'items' is not used"})  # fmt: skip
        return {"name": name, "ok": not problems, "problems": problems,
                "variables_used": sorted(set(re.findall(r"{{\s*(\w+)", source))),
                "variables_allowed": ALLOWED, "variables_required": ["items"]}  # fmt: skip

    def save_prompt(self, name: str, source: str, *, note: str | None = None) -> dict[str, Any]:
        self.calls.append(("save", name, source, note))
        if not self.check_prompt(name, source)["ok"]:
            raise ApiError(422, "refused")
        return self._store(source, note)

    def _store(self, source: str | None, note: str | None) -> dict[str, Any]:
        for v in self.versions:
            v["in_effect"] = False
        version = self.versions[0]["version"] + 1
        self.versions.insert(0, {"version": version, "author": self.username, "note": note,
                                 "created_at": "2025-05-02T10:00:00Z", "source": source,
                                 "in_effect": True})  # fmt: skip
        return self.prompt("explanation.j2")

    def rollback_prompt(
        self, name: str, version: int, *, note: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("rollback", name, version, note))
        old = next((v for v in self.versions if v["version"] == version), None)
        return self._store(old["source"] if old else None, note or f"rollback to {version}")

    def start_prompt_experiment(
        self, name: str, version: int, *, experiment: str, share: float = 0.5
    ) -> dict[str, Any]:
        self.calls.append(("experiment", name, version, experiment, share))
        if self.role != "admin":
            raise ApiError(403, "not allowed for this credential")
        self.experiment = {**EXPERIMENT, "name": experiment}
        return self.experiment

    def preview_prompt(
        self,
        name: str,
        *,
        source: str | None = None,
        sample_size: int = 3,
        user_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        self.calls.append(("preview", name, source, tuple(user_ids or ())))
        by_id = {s["id"]: s for s in SHOPPERS}
        users = [by_id[i] for i in user_ids] if user_ids else SHOPPERS[:sample_size]
        text = source if source is not None else self._in_effect()
        return {"name": name, "draft": source is not None, "llm": True, "render_errors": 0,
                "first_attempt_pass_rate": 0.5, "pass_rate": 0.67 if source else 1.0,
                "samples": [{"user_id": u["id"], "user_name": u["name"],
                             "rendered": {"template_explanation": f"{u['name']}: {text[:20]}",
                                          "user": "Hi"},
                             "explanation": "Because you like audio, now 30% off.",
                             "explanation_source": "template" if i == 0 else "llm",
                             "first_check_passed": i != 0,
                             "check_reasons": ["unsupported_number"] if i == 0 else [],
                             "failed_claims": [{"claim": "now 30% off",
                                                "reason": "no discount in the evidence"}]
                             if i == 0 else []}
                            for i, u in enumerate(users)]}  # fmt: skip

    def evaluation(self) -> dict[str, Any]:
        if self.role != "admin":
            raise ApiError(403, "not allowed for this credential")
        return EVALUATION


def run_app(client: FakeAdminClient) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["admin_client"] = client
    return at.run()


def sign_in(client: FakeAdminClient, password: str = "correct horse battery") -> AppTest:
    at = run_app(client)
    at.text_input[0].set_value("ada")
    at.text_input[1].set_value(password)
    at.button[0].click()
    return at.run()


def text_of(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for kind in ("info", "warning", "error", "success") for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def frames(at: AppTest) -> list[Any]:
    return [d.value for d in at.dataframe]


def test_the_first_screen_is_the_login_form_and_shows_no_data() -> None:
    client = FakeAdminClient()
    at = run_app(client)
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert at.text_input[1].proto.type == TextInputProto.PASSWORD
    assert not at.tabs
    assert "Sign in with an admin or editor account" in text_of(at)


def test_a_wrong_password_says_so_and_stays_on_the_login_form() -> None:
    client = FakeAdminClient()
    at = sign_in(client, password="nope")
    assert not at.exception
    assert [e.value for e in at.error] == ["Wrong username or password."]
    assert not at.tabs and client.role is None


def test_login_shows_every_section_and_never_the_token() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    assert not at.exception
    assert [t.label for t in at.tabs] == [
        "Overview", "Experiments", "Analytics", "Segments", "Prompts", "Evaluation"
    ]  # fmt: skip
    page = text_of(at)
    assert "Signed in as <b>ada</b> · admin" in page
    assert "120" in page and "111 in stock" in page  # catalog size
    assert page.count('data-testid="health-card"') == 4
    assert "cf-20250501-0800" in frames(at)[1]["Version"].tolist()
    segments = next(f for f in frames(at) if "Label" in f.columns)
    assert segments["Label"].tolist() == ["Budget electronics", "Home & kitchen regulars"]
    assert "Bearer" not in page and "token" not in page.lower()


def test_the_experiment_report_renders_variants_intervals_and_the_verdict() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    assert ("report", EXP_ID) in client.calls
    page = text_of(at)
    assert "Variant “hybrid” is best, confident at the 95% level (p = 0.0031)." in page
    variants = next(f for f in frames(at) if "CTR 95% CI" in f.columns)
    assert variants["Variant"].tolist() == ["control", "hybrid"]
    assert variants["CTR"].tolist() == ["6.00%", "9.02%"]
    assert variants["CTR 95% CI"].tolist()[1] == "7.97% – 10.19%"
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    ctr = next(s for s in specs if s.get("title", {}).get("text") == "Click-through rate")
    marks = [layer["mark"]["type"] for layer in ctr["layer"]]
    assert marks == ["rule", "tick", "tick", "circle"]  # the 95% interval, its ends, the CTR


def test_promote_calls_the_client_with_the_chosen_variant() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    assert at.selectbox(key=f"promote-variant-{EXP_ID}").value == "hybrid"  # the best, preset
    at.button(key=f"promote-{EXP_ID}").click().run()
    assert not at.exception
    assert ("promote", EXP_ID, "hybrid") in client.calls
    assert any("Promoted “hybrid”" in s.value for s in at.success)
    assert "now serves all traffic" in text_of(at)
    assert not [b for b in at.button if b.key == f"promote-{EXP_ID}"]  # done: no more buttons


def test_stop_calls_the_client() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    at.button(key=f"stop-{EXP_ID}").click().run()
    assert ("stop", EXP_ID) in client.calls
    assert at.button(key=f"stop-{EXP_ID}").disabled


def test_an_editor_sees_reports_but_no_actions_and_no_evaluation() -> None:
    client = FakeAdminClient(role="editor")
    at = sign_in(client)
    assert not at.exception
    assert not [b for b in at.button if b.key and b.key.startswith(("promote-", "stop-"))]
    page = text_of(at)
    assert "Only admins can stop or promote an experiment." in page
    assert "Your role (editor) may not see this" in page


def test_prompt_preview_shows_the_pass_rate() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    at.button(key="preview-explanation.j2").click().run()
    assert ("preview", "explanation.j2", None, ()) in client.calls
    page = text_of(at)
    assert "Pass rate" in page and "100%" in page and "50%" in page
    assert "3 of 3 answered" in page
    # Each shopper's evidence check, as in the draft preview: badge, fallback, failed claims.
    assert "failed: template fallback" in page and "passed</span>" in page
    assert "Shown instead: the template (unknown)" in page
    assert "“now 30% off” — no discount in the evidence" in page


def test_the_evaluation_section_shows_the_report() -> None:
    at = sign_in(FakeAdminClient())
    table = next(f for f in frames(at) if "Test NDCG@10" in f.columns)
    assert table["Strategy"].tolist() == ["ease", "hybrid"]
    assert "1.173× the best baseline" in text_of(at)


def test_logout_forgets_the_session() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    at.button(key="logout").click().run()
    assert ("logout",) in client.calls
    assert not at.tabs and [t.label for t in at.text_input] == ["Username", "Password"]


def test_api_down_at_login_is_a_friendly_message() -> None:
    at = sign_in(FakeAdminClient(down=True))
    assert not at.exception
    assert any("API is not answering" in w.value for w in at.warning)


def test_api_down_after_login_is_a_friendly_message() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    client.down = True
    at.run()
    assert not at.exception
    assert any("API is not answering" in w.value for w in at.warning)
    assert not at.tabs


def test_an_expired_session_goes_back_to_the_login_form() -> None:
    client = FakeAdminClient()
    at = sign_in(client)

    def expired(limit: int = 100) -> list[dict[str, Any]]:
        raise ApiError(401, "invalid token: expired")

    client.experiments = expired  # type: ignore[method-assign]
    at.run()
    assert not at.exception
    assert client.role is None
    assert any("session has expired" in w.value for w in at.warning)


# --- the prompt editor ------------------------------------------------------------------------

NAME = "explanation.j2"
GOOD = "Hi {{ user_name }}!\n{% for item in items %}\n- {{ item.name }} for you\n{% endfor %}"
BAD = "Hi {{ user_name }}!\n{{ coupon }}\n{% for item in items %}- {{ item.name }}{% endfor %}"


def edit(at: AppTest, source: str) -> AppTest:
    at.text_area[0].set_value(source)
    return at.run()


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def test_the_editor_lists_the_variables_the_template_may_use() -> None:
    at = sign_in(FakeAdminClient(role="editor"))
    assert at.text_area[0].value == "Hi {{ user_name }}\n{{ items }}"
    page = text_of(at)
    assert 'data-testid="prompt-variables"' in page
    for name in ALLOWED:
        assert f"<code>{name}</code>" in page
    assert '<code>items</code><span class="req">required</span>' in page


def test_check_shows_each_problem_on_its_line_and_a_failing_draft_is_not_saved() -> None:
    client = FakeAdminClient(role="editor")
    at = edit(sign_in(client), BAD)
    at.button(key=f"check-{NAME}").click().run()
    assert not at.exception
    page = text_of(at)
    assert "1 problem: nothing can be saved until they are fixed." in page
    assert "Line 2: unknown variable 'coupon'" in page
    assert '<div class="ln bad" data-line="2">' in page  # the line itself is marked
    assert 'data-testid="problem-line-2">line 2: unknown variable' in page

    next(t for t in at.text_input if t.label.startswith("Note")).set_value("try a coupon")
    button(at, "Save version").click().run()
    assert not [c for c in client.calls if c[0] == "save"]  # nothing stored
    assert "Not saved: the draft fails the check" in text_of(at)

    at = edit(at, GOOD)
    assert "Edited since the last check" in text_of(at)
    at.button(key=f"check-{NAME}").click().run()
    assert "No problems: this draft can be saved." in text_of(at)


def test_a_missing_required_variable_is_reported_for_the_whole_template() -> None:
    at = edit(sign_in(FakeAdminClient()), "Hi {{ user_name }}")
    at.button(key=f"check-{NAME}").click().run()
    assert "Whole template: required variable 'items' is not used" in text_of(at)


def test_the_draft_preview_runs_the_same_three_shoppers_beside_the_version_in_effect() -> None:
    client = FakeAdminClient(role="editor")
    at = edit(sign_in(client), GOOD)
    at.button(key=f"preview-draft-{NAME}").click().run()
    assert not at.exception
    previews = [c for c in client.calls if c[0] == "preview"]
    assert [(c[2], len(c[3])) for c in previews] == [(GOOD, 3), (None, 3)]
    assert previews[0][3] == previews[1][3]  # the same shoppers on both sides
    page = text_of(at)
    assert "Draft: pass rate" in page and "67%" in page
    assert "In effect: pass rate" in page and "100%" in page
    assert page.count("failed: template fallback") == 2  # one shopper, on both sides
    assert "“now 30% off” — no discount in the evidence" in page
    codes = [c.value for c in at.code]
    first = next(s["name"] for s in SHOPPERS if s["id"] == previews[0][3][0])  # random
    assert f"{first}: Hi {{{{ user_name }}}}!" in codes  # the draft's rendering ...
    assert f"{first}: Hi {{{{ user_name }}}}\n{{" in codes  # ... beside the one in effect


def test_a_failing_draft_is_not_previewed() -> None:
    client = FakeAdminClient()
    at = edit(sign_in(client), BAD)
    at.button(key=f"preview-draft-{NAME}").click().run()
    assert not [c for c in client.calls if c[0] == "preview"]
    assert "Line 2: unknown variable 'coupon'" in text_of(at)


def test_chosen_shoppers_are_the_ones_previewed() -> None:
    client = FakeAdminClient()
    at = edit(sign_in(client), GOOD)
    at.radio(key=f"preview-mode-{NAME}").set_value("Shoppers I choose").run()
    at.multiselect(key=f"preview-shoppers-{NAME}").set_value(["u1", "u3"]).run()
    at.button(key=f"preview-draft-{NAME}").click().run()
    previews = [c for c in client.calls if c[0] == "preview"]
    assert [c[3] for c in previews] == [("u1", "u3"), ("u1", "u3")]
    assert "**Bob**" in text_of(at) and "**Dan**" in text_of(at)


def test_save_with_a_note_then_the_history_shows_who_what_when_and_why() -> None:
    client = FakeAdminClient(role="editor")
    at = edit(sign_in(client), GOOD)
    next(t for t in at.text_input if t.label.startswith("Note")).set_value("one line per product")
    button(at, "Save version").click().run()
    assert not at.exception
    assert ("save", NAME, GOOD, "one line per product") in client.calls
    assert any(
        "Saved explanation.j2 as v3 by ada (“one line per product”)" in s.value for s in at.success
    )
    assert next(t for t in at.text_input if t.label.startswith("Note")).value == ""
    assert at.text_area[0].value == GOOD  # the editor shows what is in effect
    history = next(f for f in frames(at) if "Note" in f.columns)
    assert history.iloc[0][["Version", "In effect", "Author", "Note"]].tolist() == [
        "v3", "✓", "ada", "one line per product"
    ]  # fmt: skip
    assert history["Change"].tolist() == ["+4 −2 lines", "+1 −1 lines", "+2 −4 lines"]


def test_diff_any_version_against_the_one_in_effect() -> None:
    at = sign_in(FakeAdminClient())
    assert at.selectbox(key=f"diff-{NAME}").options == ["v1", "the file (v0)"]
    diff = next(c for c in at.code if c.language == "diff").value
    assert "-Hello {{ user_name }}" in diff and "+Hi {{ user_name }}" in diff
    at.selectbox(key=f"diff-{NAME}").set_value("the file (v0)").run()
    diff = next(c for c in at.code if c.language == "diff").value
    assert "--- the file (v0)" in diff and "-{% for item in items %}" in diff


def test_roll_back_to_an_earlier_version() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    at.selectbox(key=f"rollback-to-{NAME}").set_value("v1")
    next(t for t in at.text_input if t.label == "Why").set_value("v2 confused shoppers")
    at.button(key=f"rollback-{NAME}").click().run()
    assert not at.exception
    assert ("rollback", NAME, 1, "v2 confused shoppers") in client.calls
    assert any(
        "Rolled explanation.j2 back to v1: its text is in effect as v3." in s.value
        for s in at.success
    )
    assert at.text_area[0].value == "Hello {{ user_name }}\n{{ items }}"


def test_an_editor_is_told_why_no_experiment_can_be_started() -> None:
    client = FakeAdminClient(role="editor")
    at = sign_in(client)
    assert not [b for b in at.button if b.key == f"exp-start-{NAME}"]
    assert "Only admins may start experiments; your role is editor." in text_of(at)


def test_an_admin_starts_an_experiment_pinning_a_saved_version_and_opens_its_report() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    at.selectbox(key=f"exp-version-{NAME}").set_value("v1").run()
    assert at.text_input(key=f"exp-name-{NAME}-v1").value == "explanation-v1"
    at.button(key=f"exp-start-{NAME}").click().run()
    assert not at.exception
    assert ("experiment", NAME, 1, "explanation-v1", 0.5) in client.calls
    assert "Experiment “explanation-v1” is running" in text_of(at)
    at.button(key=f"open-report-{NAME}").click().run()
    assert at.session_state["section"] == "Experiments"
    assert at.selectbox(key="experiment").value == "explanation-v1"


def test_a_refused_experiment_is_explained_not_a_crash() -> None:
    client = FakeAdminClient()
    at = sign_in(client)
    client.role = "editor"  # the API's answer, not the console's guess, decides
    at.button(key=f"exp-start-{NAME}").click().run()
    assert not at.exception
    assert any("Could not start the experiment" in e.value for e in at.error)


def test_claim_failures_are_read_from_old_and_new_preview_shapes() -> None:
    from chat_ui.admin_prompts_view import claim_failures

    old = {"check_reasons": ["unsupported_number", "unknown_product"], "fallback_reason": "x"}
    assert claim_failures(old) == ["unsupported number", "unknown product"]
    new = {
        "check_reasons": ["unsupported_number"],
        "failed_claims": [
            {"claim": "now 30% off", "reason": "no discount in the evidence",
             "product_name": "Desk Lamp"},
            {"text": "bought by 90% of shoppers", "kind": "unsupported_number"},
            "a bare sentence",
        ],
        "claims": [{"claim": "fits your desk", "ok": True}],  # a passed claim is not a failure
    }  # fmt: skip
    assert claim_failures(new) == [
        "Desk Lamp: “now 30% off” — no discount in the evidence",
        "“bought by 90% of shoppers” — unsupported_number",
        "a bare sentence",
    ]
    assert claim_failures({"claims": None, "check_reasons": []}) == []


def test_failed_claims_in_the_apis_own_shape_show_the_words_the_code_and_the_attempt() -> None:
    """The API names the quoted words ``span`` (``FailedClaim``): they must reach the page."""
    from backend.services.prompt_admin import FailedClaim
    from chat_ui.admin_prompts_view import check_badge, claim_failures, fallback_text

    sample = {
        "explanation_source": "template",
        "fallback_reason": "check_failed:unsupported_price",
        "first_check_passed": False,
        "failed_claims": [
            FailedClaim(attempt=1, code="unsupported_price", reason="the price is $34.00",
                        span="$20", product_id="p1", product_name="Desk Lamp").model_dump(),
            FailedClaim(attempt=2, code="not_json", reason="the answer is not JSON").model_dump(),
        ],
    }  # fmt: skip
    assert claim_failures(sample) == [
        "Desk Lamp: “$20” — the price is $34.00 (unsupported_price)",
        "retry · the answer is not JSON (not_json)",
    ]
    assert fallback_text(sample) == "Shown instead: the template (check failed:unsupported price)"
    assert fallback_text({"explanation_source": "llm"}) == ""
    timed_out = {"explanation_source": "template", "fallback_reason": "llm_timeout"}
    assert "no answer: llm timeout" in check_badge(timed_out)


def test_the_pass_rate_says_how_many_samples_it_is_out_of() -> None:
    """Against a slow model, shoppers after the first may get no answer within the request's
    time: the rate is over the answered ones, and the console says how many those are."""
    from chat_ui.admin_prompts_view import checked_share

    samples = [{"first_check_passed": False}, {"first_check_passed": None}, {}]
    assert checked_share({"samples": samples}).endswith("1 of 3 answered")
