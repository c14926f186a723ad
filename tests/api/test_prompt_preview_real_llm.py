"""The prompt preview against a real model, and the console showing that real answer.

The API part previews a draft of ``explanation.j2`` (the text a shopper gets when the LLM's
answer is refused) for three sample shoppers with the app pointed at the llama.cpp server on
SmolLM2 135M Instruct (``tests/llm/real_server.py``). What that small model writes is not under our
control, so the assertions are about what is: every sample carries the draft's rendering and an
outcome (checked LLM text, or the template with a reason), every failed claim says which check
failed and why, and the pass rates are the per-sample results counted. The console part feeds
that same captured response to the operator console (``chat_ui/admin.py``) and checks that an
operator sees, per shopper, the answer or the fallback, the badge and each failed claim's reason.
"""

from __future__ import annotations

import time
from html import escape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from chat_ui import admin_prompts_view
from chat_ui import admin_view as view
from tests.factories import Shop, build_shop
from tests.llm.real_server import RunningServer
from tests.llm.test_real_server_e2e import MODEL_FAILURES, app_with_llm
from tests.settings import ADMIN_AUTH, ADMIN_TOKEN
from tests.ui.admin_fake import GOOD, FakeAdminClient, edit, sign_in, text_of

pytestmark = pytest.mark.llm_server

NAME = "explanation.j2"
MARK = "Draft for"
DRAFT = f"{MARK} {{{{ user_name }}}}: {{% for item in items %}}{{{{ item.name }}}}; {{% endfor %}}"
SHOPPERS = ("alice", "bob", "dave")
# Per answer: the model writes a few tokens per second under a JSON grammar on a loaded machine;
# short answers and one retry keep six calls inside the test's time.
LLM_DEADLINE = 45.0
MAX_TOKENS = 64

# One preview per module run: the console test reads the response the API test produced.
CAPTURED: dict[str, Any] = {}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


@pytest.fixture
def shop(db: Engine) -> Shop:
    return build_shop(db)


@pytest.fixture
def real_preview(
    llm_server: RunningServer, tmp_path: Path, database_url: str, shop: Shop
) -> dict[str, Any]:
    if "body" not in CAPTURED:
        users = [str(shop.users[name].id) for name in SHOPPERS]
        with app_with_llm(
            llm_server, tmp_path, database_url,
            admin_token=ADMIN_TOKEN, default_top_n=2, llm_max_tokens=MAX_TOKENS,
            llm_deadline_seconds=LLM_DEADLINE, request_deadline_seconds=6 * LLM_DEADLINE,
        ) as (client, _):  # fmt: skip
            started = time.monotonic()
            response = client.post(
                f"/admin/prompts/{NAME}/preview",
                json={"source": DRAFT, "user_ids": users},
                headers=ADMIN_AUTH,
            )
            CAPTURED["seconds"] = time.monotonic() - started
        assert response.status_code == 200, response.text
        CAPTURED["body"] = response.json()
    body: dict[str, Any] = CAPTURED["body"]
    return body


def test_a_draft_preview_reports_each_shoppers_real_llm_outcome(real_preview):
    body = real_preview
    print(f"preview took {CAPTURED['seconds']:.1f} s")  # noqa: T201 (the report's figures)
    for s in body["samples"]:
        claims = [(c["attempt"], c["code"], c["span"]) for c in s["failed_claims"]]
        print(s["user_name"], s["explanation_source"], s["fallback_reason"], claims)  # noqa: T201
    assert (body["name"], body["draft"], body["llm"], body["render_errors"]) == (
        NAME, True, True, 0,
    )  # fmt: skip
    samples = body["samples"]
    assert len(samples) == 3
    for sample in samples:
        assert sample["error"] is None
        # The draft is what the template fallback renders, whatever the model did.
        assert sample["rendered"]["template_explanation"].startswith(
            f"{MARK} {sample['user_name']}: "
        )
        assert sample["facts"], sample  # the numbered facts the prompt gave the model
        assert sample["explanation"]
        # One answer per attempt, each checked (a timeout ends the attempts unanswered).
        attempts = 1 if sample["first_check_passed"] else 2
        if sample["fallback_reason"] != "llm_timeout":
            assert len(sample["llm_answers"]) == attempts, sample
        if sample["explanation_source"] == "llm":
            assert sample["fallback_reason"] is None
            assert MARK not in sample["explanation"]
        else:
            assert sample["explanation_source"] == "template"
            # The model's fault, or (on a loaded machine) out of time: never our error.
            assert sample["fallback_reason"].startswith((*MODEL_FAILURES, "llm_timeout"))
            assert sample["explanation"] == sample["rendered"]["template_explanation"]
        if sample["first_check_passed"] is None:  # no answer within the deadline
            assert sample["fallback_reason"] == "llm_timeout" and not sample["failed_claims"]
            continue
        failed_first = sample["first_check_passed"] is False
        attempts = {c["attempt"] for c in sample["failed_claims"]}
        assert (1 in attempts) == failed_first, sample
        reason = sample["fallback_reason"] or ""
        if reason.startswith(MODEL_FAILURES):  # the last answer's first failed check
            code = "not_json" if reason == "bad_json" else reason.removeprefix("check_failed:")
            assert code in {c["code"] for c in sample["failed_claims"]}, sample
        for claim in sample["failed_claims"]:
            assert claim["attempt"] in (1, 2)
            assert claim["code"].strip() and claim["reason"].strip(), claim
            assert claim["code"] in sample["check_reasons"]
            assert claim["span"] is None or claim["span"].strip(), claim
            if claim["product_id"] is not None:
                assert claim["product_name"], claim
    judged = [s for s in samples if s["first_check_passed"] is not None]
    if judged:
        assert body["first_attempt_pass_rate"] == round(
            sum(s["first_check_passed"] for s in judged) / len(judged), 3
        )
        assert body["pass_rate"] == round(
            sum(s["explanation_source"] == "llm" for s in judged) / len(judged), 3
        )
    else:
        assert body["pass_rate"] is None and body["first_attempt_pass_rate"] is None


class RealPreviewClient(FakeAdminClient):
    """The console's fake API, except that the preview is the real model's, captured above."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(role="editor")
        self.body = body

    def preview_shoppers(self, limit: int = 100) -> list[dict[str, Any]]:
        return [{"id": s["user_id"], "name": s["user_name"]} for s in self.body["samples"]]

    def preview_prompt(
        self,
        name: str,
        *,
        source: str | None = None,
        sample_size: int = 3,
        user_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        self.calls.append(("preview", name, source, tuple(user_ids or ())))
        return self.body  # the draft and the version in effect: the same real answers


def test_the_console_shows_the_real_answers_badges_and_failed_claims(real_preview):
    client = RealPreviewClient(real_preview)
    at = edit(sign_in(client), GOOD)
    at.button(key=f"preview-draft-{NAME}").click().run()
    assert not at.exception
    assert len([c for c in client.calls if c[0] == "preview"]) == 2
    page = text_of(at)
    codes = "\n".join(str(c.value) for c in at.code)
    assert page.count("Draft: pass rate") == 1
    assert view.percent(real_preview["pass_rate"], 0) in page
    assert (
        escape(admin_prompts_view.checked_share(real_preview)) in page
    )  # inside the KPI card's HTML
    for sample in real_preview["samples"]:
        assert f"**{sample['user_name']}**" in page
        assert sample["rendered"]["template_explanation"] in codes  # the draft's rendering
        if sample["explanation_source"] == "llm":
            badge = "passed" if sample["first_check_passed"] else "passed on retry"
            assert f'<span class="sw-badge pass">{badge}</span>' in page
        else:
            if sample["first_check_passed"] is None:
                assert "no answer: llm timeout" in page
            else:
                assert "failed: template fallback" in page
            reason = sample["fallback_reason"].replace("_", " ")
            assert f"Shown instead: the template ({reason})" in page
            for answer in sample["llm_answers"]:  # the refused answers, verbatim
                assert answer in codes
        for claim in sample["failed_claims"]:
            assert claim["reason"] in page
            assert f"({claim['code']})" in page
            if claim["span"]:
                assert f"“{claim['span']}” — {claim['reason']}" in page
