"""The operator console under ``AppTest`` with a fake admin client: the client, its canned
API answers, and the steps the console tests share (sign in, edit a draft, find a button)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

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


NAME = "explanation.j2"
GOOD = "Hi {{ user_name }}!\n{% for item in items %}\n- {{ item.name }} for you\n{% endfor %}"
BAD = "Hi {{ user_name }}!\n{{ coupon }}\n{% for item in items %}- {{ item.name }}{% endfor %}"


def edit(at: AppTest, source: str) -> AppTest:
    at.text_area[0].set_value(source)
    return at.run()


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)
