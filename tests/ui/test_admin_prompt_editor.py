"""The console's prompt editor: the live check, draft previews, saving, history, rollback
and starting an experiment for a saved version; and how preview findings read."""

from __future__ import annotations

from tests.ui.admin_fake import (
    ALLOWED,
    BAD,
    GOOD,
    NAME,
    SHOPPERS,
    FakeAdminClient,
    button,
    edit,
    frames,
    sign_in,
    text_of,
)


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
