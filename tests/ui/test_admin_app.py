"""The operator console, driven by ``AppTest`` with the admin client faked: login, the
sections, experiments and what an editor may not do."""

from __future__ import annotations

import json
from typing import Any

from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto

from chat_ui.admin_client import ApiError
from tests.ui.admin_fake import EXP_ID, FakeAdminClient, frames, run_app, sign_in, text_of


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
