"""The operator console's prompt section: edit a template with a live check, preview a draft
for real shoppers beside the version in effect, save, compare and roll back versions, and start
an A/B experiment for a stored version."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from chat_ui import admin_prompts_view as prompt_view
from chat_ui import admin_view as view
from chat_ui.admin_client import ApiError, ApiUnavailable
from chat_ui.admin_sections import DOWN, load

T = TypeVar("T")


def prompts(client: Any) -> None:
    prompts = load(client, client.prompts)
    st.caption(
        "Templates live in `prompts/`; an edit saved here is stored as a new version and takes "
        "effect at once, and the file in git stays as it was. Check a draft, preview it for "
        "three shoppers next to the version in effect, then save it with a note."
    )
    st.dataframe(prompt_view.prompts_table(prompts), hide_index=True, width="stretch")
    if not prompts:
        return
    names = [p["name"] for p in prompts]
    name = st.selectbox("Template", names, key="prompt")
    detail = load(client, lambda: client.prompt(name))
    versions = load(client, lambda: client.prompt_versions(name))
    may = load(client, client.prompt_permissions)
    _notice(name)
    st.subheader("Edit", anchor=False)
    _editor(client, name, detail, may)
    st.subheader("History", anchor=False)
    _history(client, name, detail, versions, may)
    st.subheader("Try it on real traffic", anchor=False)
    _experiment_from(client, name, versions, may)


def _notice(name: str) -> None:
    notice = st.session_state.get("prompt_notice", {}).pop(name, None)
    if notice:
        kind, text = notice
        getattr(st, kind)(text)


def _say(name: str, kind: str, text: str) -> None:
    st.session_state.setdefault("prompt_notice", {})[name] = (kind, text)


def _call(name: str, failed: str, call: Callable[[], T]) -> T | None:
    """A button's API call; on failure say why beside the prompt ("<failed>: <reason>")."""
    try:
        return call()
    except ApiUnavailable:
        _say(name, "warning", DOWN)
    except ApiError as exc:
        _say(name, "error", f"{failed}: {exc.detail}")
    return None


def _editor(client: Any, name: str, detail: dict[str, Any], may: dict[str, Any]) -> None:
    edit = may.get("edit") or {}
    source_col, side = st.columns([3, 1])
    with source_col:
        draft = st.text_area(
            "Template source",
            value=detail["source"],
            height=340,
            key=_key("draft", name),
            disabled=not edit.get("allowed"),
            help="Jinja2. Ctrl+Enter applies the text; Check validates it as a save would.",
        )
        draft = draft or ""
        check, preview, _ = st.columns([1, 1.6, 2])
        if check.button("Check", key=f"check-{name}", type="primary", width="stretch"):
            _checked(client, name, draft)
        run_preview = preview.button("Preview draft", key=f"preview-draft-{name}", width="stretch")
    if run_preview:
        _checked(client, name, draft)
    result = st.session_state.get("prompt_checks", {}).get(name)
    with side:
        used = result[1].get("variables_used") if result and result[0] == draft else None
        st.markdown(prompt_view.variables_html(detail, used), unsafe_allow_html=True)
        if draft != detail["source"]:
            st.caption("Unsaved changes.")
    if not edit.get("allowed"):
        st.info(edit.get("why") or "Your role may not edit prompts.", icon=":material/lock:")
        return
    if result and result[0] == draft:
        _show_check(draft, result[1])
    elif result:
        st.caption("Edited since the last check: press Check again.")
    _shopper_picker(client, name)
    if run_preview:
        if result and result[1].get("ok"):
            _preview_draft(client, name, draft)
        else:
            st.warning("Fix the problems above first: a draft that fails the check is not "
                       "previewed.")  # fmt: skip
    previews = st.session_state.get("draft_previews", {}).get(name)
    if previews and previews["source"] == draft:
        _side_by_side(name, previews)
    with st.form(f"save-{name}", border=False):
        note_col, save_col = st.columns([4, 1], vertical_alignment="bottom")
        note_col.text_input(
            "Note (why this change)", key=_key("note", name), max_chars=500,
            placeholder="e.g. shorter reasons, as the product team asked",
        )  # fmt: skip
        save_col.form_submit_button(
            "Save version", type="primary", width="stretch",
            on_click=_save, args=(client, name, detail["source"]),
        )  # fmt: skip


def _checked(client: Any, name: str, draft: str) -> dict[str, Any]:
    result: dict[str, Any] = load(client, lambda: client.check_prompt(name, draft))
    st.session_state.setdefault("prompt_checks", {})[name] = (draft, result)
    return result


def _show_check(draft: str, result: dict[str, Any]) -> None:
    problems = result.get("problems") or []
    if not problems:
        st.success("No problems: this draft can be saved.", icon=":material/check_circle:")
        return
    st.error(
        f"{len(problems)} problem{'s' if len(problems) != 1 else ''}: nothing can be saved "
        "until they are fixed.",
        icon=":material/error:",
    )
    for problem in problems:
        st.markdown(f"- {prompt_view.problem_text(problem)}")
    st.markdown(prompt_view.annotated_source(draft, problems), unsafe_allow_html=True)


def _shopper_picker(client: Any, name: str) -> None:
    mode = st.radio(
        "Preview for", ["Three shoppers at random", "Shoppers I choose"],
        horizontal=True, key=f"preview-mode-{name}",
    )  # fmt: skip
    if mode == "Shoppers I choose":
        shoppers = load(client, client.preview_shoppers)
        by_id = {s["id"]: s["name"] for s in shoppers}
        st.multiselect(
            "Shoppers", list(by_id), format_func=lambda i: by_id.get(i, i),
            max_selections=3, key=f"preview-shoppers-{name}",
        )  # fmt: skip


def _preview_draft(client: Any, name: str, draft: str) -> None:
    chosen = st.session_state.get(f"preview-shoppers-{name}") or []
    if st.session_state.get(f"preview-mode-{name}") != "Shoppers I choose" or not chosen:
        shoppers = load(client, client.preview_shoppers)
        chosen = [s["id"] for s in random.sample(shoppers, min(3, len(shoppers)))]
    with st.spinner("Rendering the draft and the version in effect…"):
        draft_result = load(client, lambda: client.preview_prompt(
            name, source=draft, user_ids=chosen))  # fmt: skip
        current = load(client, lambda: client.preview_prompt(name, user_ids=chosen))
    st.session_state.setdefault("draft_previews", {})[name] = {
        "source": draft, "draft": draft_result, "current": current,
    }  # fmt: skip


def _side_by_side(name: str, previews: dict[str, Any]) -> None:
    draft, current = previews["draft"], previews["current"]
    if draft.get("llm"):
        cells = st.columns(2)
        pairs = [("Draft", draft), ("In effect", current)]
        for cell, (label, result) in zip(cells, pairs, strict=True):
            cell.markdown(
                view.kpi(f"{label}: pass rate", view.percent(result.get("pass_rate"), 0),
                         prompt_view.checked_share(result)), unsafe_allow_html=True,
            )  # fmt: skip
    else:
        st.caption(
            "No LLM is configured (OPENAI_API_KEY), so the preview shows the rendered text only; "
            "with one, each shopper's LLM answer and its evidence check appear here too."
        )
    part = prompt_view.PREVIEW_PART.get(name)
    if part is None:
        st.caption(
            f"{name} is not part of the recommendation explanation this preview renders; "
            "the rendered explanation parts are shown so you can compare them."
        )
    current_by_user = {s.get("user_id"): s for s in current.get("samples") or []}
    for sample in draft.get("samples") or []:
        st.markdown(f"**{sample.get('user_name')}**")
        left, right = st.columns(2)
        for cell, label, shown in (
            (left, "Draft", sample),
            (right, "In effect", current_by_user.get(sample.get("user_id")) or {}),
        ):
            with cell:
                st.caption(label)
                _sample(shown, part)


def _sample(sample: dict[str, Any], part: str | None) -> None:
    if sample.get("error"):
        st.error(sample["error"])
        return
    rendered = sample.get("rendered") or {}
    if part and part in rendered:
        st.code(rendered[part], language=None, wrap_lines=True)
    else:
        for key, text in rendered.items():
            st.code(f"[{key}]\n{text}", language=None, wrap_lines=True)
    if sample.get("explanation"):
        st.markdown(f"LLM answer {prompt_view.check_badge(sample)}", unsafe_allow_html=True)
        passed = sample.get("explanation_source") == "llm"
        refused = [] if passed else sample.get("llm_answers") or []
        for attempt, answer in enumerate(refused, start=1):
            # The model's own text, refused: shown as code, never rendered as markdown.
            st.code(f"[attempt {attempt}]\n{answer}", language=None, wrap_lines=True)
        fallback = prompt_view.fallback_text(sample)
        if fallback:
            st.caption(fallback)
        st.markdown(f"> {sample['explanation']}")
        failures = prompt_view.claim_failures(sample)
        if failures:
            st.markdown("Failed claims:\n" + "\n".join(f"- {f}" for f in failures))


def _save(client: Any, name: str, in_effect: str) -> None:
    """A callback (so the editor and the note can be reset): check, then store the draft."""
    draft = str(st.session_state.get(_key("draft", name)) or "")
    note = str(st.session_state.get(_key("note", name)) or "").strip()
    if draft == in_effect:
        _say(name, "info", "Nothing to save: the draft is the version in effect.")
        return
    check = _call(name, "Not saved", lambda: client.check_prompt(name, draft))
    if check is None:
        return
    st.session_state.setdefault("prompt_checks", {})[name] = (draft, check)
    if not check.get("ok"):
        _say(name, "error", "Not saved: the draft fails the check; the problems are below.")
        return
    saved = _call(name, "Not saved", lambda: client.save_prompt(name, draft, note=note or None))
    if saved is None:
        return
    _forget_draft(name)
    why = f" (“{note}”)" if note else ""
    _say(name, "success", f"Saved {name} as v{saved['version']} by {saved.get('author')}{why}; "
         "it is in effect now.")  # fmt: skip


def _key(widget: str, name: str) -> str:
    """A widget key that changes after each save or rollback: a new widget starts from the text
    now in effect (a widget keeps what the browser holds even if its state is dropped)."""
    return f"{widget}-{name}-{st.session_state.get('prompt_generation', {}).get(name, 0)}"


def _forget_draft(name: str) -> None:
    """After a save or a rollback the editor and the notes start afresh."""
    generations = st.session_state.setdefault("prompt_generation", {})
    generations[name] = generations.get(name, 0) + 1
    st.session_state.get("prompt_checks", {}).pop(name, None)
    st.session_state.get("draft_previews", {}).pop(name, None)


def _history(
    client: Any,
    name: str,
    detail: dict[str, Any],
    versions: list[dict[str, Any]],
    may: dict[str, Any],
) -> None:
    file_source = detail.get("file_source") or ""
    if not versions:
        st.caption("Only the file version exists: nobody has edited this template yet.")
    else:
        st.dataframe(
            prompt_view.versions_table(versions, file_source), hide_index=True, width="stretch"
        )
    current = detail["source"]
    choices = {f"v{v['version']}": prompt_view.version_text(v, file_source) for v in versions}
    choices["the file (v0)"] = file_source
    in_effect = next((f"v{v['version']}" for v in versions if v.get("in_effect")), None)
    others = [c for c in choices if c != in_effect] or list(choices)
    which = st.selectbox("Compare with the version in effect", others, key=f"diff-{name}")
    diff = prompt_view.diff_text(
        choices[which], current, which, f"in effect ({in_effect or 'file'})"
    )
    if diff:
        st.code(diff, language="diff")
    else:
        st.caption(f"{which} is the same text as the version in effect.")

    rollback = may.get("rollback") or {}
    if not rollback.get("allowed"):
        st.info(rollback.get("why") or "Your role may not roll back.", icon=":material/lock:")
    elif versions:
        pick, note, go = st.columns([1.3, 2.5, 1], vertical_alignment="bottom")
        pick.selectbox("Roll back to", others, key=f"rollback-to-{name}")
        note.text_input("Why", key=_key("rollback-note", name), max_chars=500)
        go.button(
            "Roll back", key=f"rollback-{name}", width="stretch",
            on_click=_rollback, args=(client, name),
        )  # fmt: skip
    _stored_preview(client, name, versions)


def _rollback(client: Any, name: str) -> None:
    """A callback: it reads the chosen version and note as they are when the button is hit."""
    target = str(st.session_state[f"rollback-to-{name}"])
    note = str(st.session_state.get(_key("rollback-note", name)) or "")
    version = 0 if target.startswith("the file") else int(target.lstrip("v"))
    back = _call(
        name,
        "Could not roll back",
        lambda: client.rollback_prompt(name, version, note=note.strip() or None),
    )
    if back is None:
        return
    _forget_draft(name)
    if back.get("origin") == "file":
        text = f"Rolled {name} back to {target}: the file is in effect again."
    else:
        text = f"Rolled {name} back to {target}: its text is in effect as v{back.get('version')}."
    _say(name, "success", text)


def _stored_preview(client: Any, name: str, versions: list[dict[str, Any]]) -> None:
    labels = ["in effect"] + [f"v{v['version']}" for v in versions if v.get("source")]
    pick, run = st.columns([2, 1], vertical_alignment="bottom")
    which = pick.selectbox("Version to preview", labels, key=f"preview-version-{name}")
    if run.button("Run preview", key=f"preview-{name}", width="stretch"):
        source = None
        if which != "in effect":
            source = next(v["source"] for v in versions if f"v{v['version']}" == which)
        result = load(client, lambda: client.preview_prompt(name, source=source))
        st.session_state.setdefault("previews", {})[(name, which)] = result
    result = st.session_state.get("previews", {}).get((name, which))
    if result:
        _preview(result)


def _experiment_from(
    client: Any, name: str, versions: list[dict[str, Any]], may: dict[str, Any]
) -> None:
    start = may.get("start_experiment") or {}
    saved = [v for v in versions if v.get("source")]
    started = st.session_state.get("prompt_experiments", {}).get(name)
    if started:
        st.success(
            f"Experiment “{started['name']}” is running: {started['share']:.0%} of shoppers get "
            f"{started['variant']}, the rest the version in effect."
        )
        st.button(
            "Open its report", key=f"open-report-{name}",
            on_click=_open_report, args=(started["name"],),
        )  # fmt: skip
    if not start.get("allowed"):
        st.info(
            (start.get("why") or "Your role may not start experiments.")
            + " An admin can start one from a saved version here.",
            icon=":material/lock:",
        )
        return
    if not saved:
        st.caption("Save a version first: an experiment pins a saved version for one variant.")
        return
    pick, title, share, go = st.columns([1, 2, 1.3, 1], vertical_alignment="bottom")
    labels = [f"v{v['version']}" for v in saved]
    version = pick.selectbox("Saved version", labels, key=f"exp-version-{name}")
    experiment = title.text_input(
        "Experiment name", value=f"{name.removesuffix('.j2')}-{version}",
        key=f"exp-name-{name}-{version}", max_chars=120,
    )  # fmt: skip
    percent = share.slider(
        "Share on this version", 10, 90, 50, step=10, format="%d%%", key=f"exp-share-{name}"
    )
    go.button(
        "Start A/B experiment", key=f"exp-start-{name}", width="stretch",
        on_click=_start_experiment,
        args=(client, name, int(version.lstrip("v")), experiment, percent / 100),
    )  # fmt: skip


def _start_experiment(client: Any, name: str, version: int, experiment: str, share: float) -> None:
    created = _call(
        name,
        "Could not start the experiment",
        lambda: client.start_prompt_experiment(
            name, version, experiment=experiment.strip(), share=share
        ),
    )
    if created is None:
        return
    st.session_state.setdefault("prompt_experiments", {})[name] = {
        "id": created["id"], "name": created["name"], "variant": f"v{version}", "share": share,
    }  # fmt: skip


def _open_report(experiment: str) -> None:
    st.session_state["section"] = "Experiments"
    st.session_state["experiment"] = experiment


def _preview(result: dict[str, Any]) -> None:
    samples = result.get("samples") or []
    cells = st.columns(3)
    if result.get("llm"):
        cells[0].markdown(
            view.kpi(
                "Pass rate",
                view.percent(result.get("pass_rate"), 0),
                prompt_view.checked_share(result),
            ),
            unsafe_allow_html=True,
        )
        cells[1].markdown(
            view.kpi(
                "First-attempt pass",
                view.percent(result.get("first_attempt_pass_rate"), 0),
                "evidence check, no retry",
            ),
            unsafe_allow_html=True,
        )
    else:
        cells[0].markdown(
            view.kpi("Pass rate", "–", "needs an LLM (OPENAI_API_KEY)"), unsafe_allow_html=True
        )
        cells[1].markdown(
            view.kpi(
                "Rendered",
                f"{len(samples) - int(result.get('render_errors') or 0)}/{len(samples)}",
                "samples without errors",
            ),
            unsafe_allow_html=True,
        )
    cells[2].markdown(
        view.kpi("Render errors", result.get("render_errors", 0), f"of {len(samples)} samples"),
        unsafe_allow_html=True,
    )
    for sample in samples:
        with st.expander(f"{sample.get('user_name')}", expanded=False):
            _sample(sample, prompt_view.PREVIEW_PART.get(str(result.get("name"))))
            for part, text in (sample.get("rendered") or {}).items():
                st.caption(part)
                st.code(text, language=None, wrap_lines=True)
