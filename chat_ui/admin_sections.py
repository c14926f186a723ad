"""The operator console's sections other than prompts, and how a section loads its data: one
API call whose failure is said in that section (``load``), which then stops (``Stop``)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any, TypeVar

import streamlit as st

from chat_ui import admin_view as view
from chat_ui.admin_client import ApiError, ApiUnavailable

T = TypeVar("T")

DOWN = (
    "The Shopwise API is not answering right now, so there is nothing to show. "
    "Check that it is running (`make run` or `shopwise serve`) and reload this page."
)
EXPIRED = "Your session has expired. Please sign in again."


class Stop(Exception):
    """A section could not load; its message is already on screen."""


def load(client: Any, call: Callable[[], T], *, missing: str = "Nothing to show yet.") -> T:
    """Run one API call for a section; on failure say why in that section and skip the rest."""
    try:
        return call()
    except ApiUnavailable:
        st.warning(DOWN, icon=":material/cloud_off:")
    except ApiError as exc:
        if exc.status == 401:
            client.logout()
            st.session_state["flash"] = ("warning", EXPIRED)
            st.rerun()
        elif exc.status == 403:
            st.info(
                f"Your role ({client.role}) may not see this: {exc.detail}", icon=":material/lock:"
            )
        elif exc.status == 404:
            st.info(missing, icon=":material/info:")
        else:
            st.error(f"The API refused: {exc.detail}")
    raise Stop


def overview(client: Any) -> None:
    health = st.session_state["health"]
    state = load(client, client.overview)
    catalog = state["catalog"]
    mode, _, why = str(state.get("explanations", "")).partition(" (")
    cells = st.columns(5)
    figures = [
        (
            "Products",
            view.number(catalog["products"]),
            f"{view.number(catalog['in_stock'])} in stock",
        ),
        ("Categories", view.number(catalog["categories"]), ""),
        ("Shoppers", view.number(catalog["users"]), ""),
        ("Interactions", view.number(catalog["interactions"]), "events stored"),
        ("Explanations", mode, why.rstrip(")") or "LLM with evidence check"),
    ]
    for cell, (label, value, sub) in zip(cells, figures, strict=True):
        cell.markdown(view.kpi(label, value, sub), unsafe_allow_html=True)

    st.subheader("Components", anchor=False)
    components = list((health.get("components") or {}).items())
    columns = st.columns(3)
    for i, (name, component) in enumerate(components):
        columns[i % 3].markdown(view.health_card(name, component), unsafe_allow_html=True)

    left, right = st.columns(2)
    with left:
        st.subheader("Index", anchor=False)
        snap = state["snapshot"]
        st.markdown(
            f"Engine snapshot **{snap.get('version') or 'not built'}** · "
            f"{view.number(snap['products'])} products in memory, "
            f"{view.number(snap['embedded'])} with vectors"
        )
        if state["index"]:
            st.dataframe(
                [
                    {
                        "Collection": i["collection"],
                        "Embedding model": i["model_id"].rsplit("/", 1)[-1],
                        "Vectors": i["vectors"],
                        "Last run": view.when(i["last_run_at"]),
                    }
                    for i in state["index"]
                ],
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("The vector index has not been built yet (`shopwise index`).")
    with right:
        st.subheader("Model versions", anchor=False)
        if state["models"]:
            st.dataframe(
                [
                    {
                        "Version": m["version"],
                        "Models": ", ".join(m["kinds"]),
                        "Interactions": m["n_interactions"],
                        "Trained": view.when(m["trained_at"]),
                    }
                    for m in state["models"]
                ],
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No collaborative model trained yet (`shopwise train`).")


def experiments(client: Any) -> None:
    experiments = load(client, client.experiments)
    if not experiments:
        st.info(
            "No experiments yet. Create one with `POST /experiments`.", icon=":material/science:"
        )
        return
    st.dataframe(view.experiments_table(experiments), hide_index=True, width="stretch")
    names = [e["name"] for e in experiments]
    chosen = st.selectbox("Experiment", names, key="experiment")
    experiment = experiments[names.index(chosen)]
    st.markdown(
        f"**{experiment['name']}** {view.pill(experiment['status'])}"
        + (f" · winner **{experiment['winner']}**" if experiment.get("winner") else ""),
        unsafe_allow_html=True,
    )
    if experiment.get("description"):
        st.caption(experiment["description"])
    report = load(client, lambda: client.experiment_report(experiment["id"]))
    st.markdown(view.verdict_html(report), unsafe_allow_html=True)
    left, right = st.columns(2)
    left.altair_chart(view.interval_chart(report, "ctr", "Click-through rate"), width="stretch")
    right.altair_chart(view.interval_chart(report, "conversion", "Conversion"), width="stretch")
    st.dataframe(view.variant_table(report), hide_index=True, width="stretch")
    _experiment_actions(client, experiment, report)


def _experiment_actions(client: Any, experiment: dict[str, Any], report: dict[str, Any]) -> None:
    if experiment["status"] == "promoted":
        st.caption(
            f"Promoted: “{experiment['winner']}” now serves all traffic; bucketing has stopped."
        )
        return
    if client.role != "admin":
        st.caption("Only admins can stop or promote an experiment.")
        return
    variants = [v["name"] for v in experiment.get("variants") or []]
    best = report.get("best_variant")
    pick, promote, stop = st.columns([2, 1, 1], vertical_alignment="bottom")
    variant = pick.selectbox(
        "Variant to promote",
        variants,
        index=variants.index(best) if best in variants else 0,
        key=f"promote-variant-{experiment['id']}",
    )
    promote.button(
        "Promote variant",
        key=f"promote-{experiment['id']}",
        type="primary",
        on_click=_act,
        args=(client, "promote", experiment, variant),
        width="stretch",
    )
    stop.button(
        "Stop experiment",
        key=f"stop-{experiment['id']}",
        disabled=experiment["status"] != "running",
        on_click=_act,
        args=(client, "stop", experiment, None),
        width="stretch",
    )


def _act(client: Any, action: str, experiment: dict[str, Any], variant: str | None) -> None:
    try:
        if action == "promote":
            client.promote(experiment["id"], variant)
            text = f"Promoted “{variant}” in {experiment['name']}: it now serves all traffic."
        else:
            client.stop_experiment(experiment["id"])
            text = f"Stopped {experiment['name']}: shoppers get the default configuration."
        st.session_state["flash"] = ("success", text)
    except ApiUnavailable:
        st.session_state["flash"] = ("warning", DOWN)
    except ApiError as exc:
        st.session_state["flash"] = ("error", f"Could not {action}: {exc.detail}")


def analytics(client: Any) -> None:
    days = st.radio(
        "Period", [7, 14, 30], index=1, horizontal=True, format_func=lambda d: f"last {d} days"
    )
    summary = load(client, lambda: client.analytics_summary(days=days))
    daily = view.daily_frame(summary)
    if daily.empty:
        st.info("No recommendation impressions logged in this period.", icon=":material/info:")
    else:
        charts = st.columns(3)
        rates = [
            ("ctr", "Daily click-through rate", view.TEAL, False, "No impressions."),
            ("llm_share", "LLM-written explanations", view.SLATE, True, "No explanations."),
            ("evidence_check_pass_rate", "Evidence-check pass rate", view.GREEN, True,
             "No LLM explanation was checked in this period (template mode)."),
        ]  # fmt: skip
        for cell, (field, title, colour, share, empty) in zip(charts, rates, strict=True):
            chart = view.line_chart(daily, field, title, colour, share=share)
            cell.altair_chart(chart, width="stretch")
            if daily[field].isna().all():
                cell.caption(empty)
    if summary.get("by_strategy"):
        left, right = st.columns([3, 2])
        left.altair_chart(view.strategy_chart(summary), width="stretch")
        right.dataframe(view.strategy_table(summary), hide_index=True, width="stretch")
        right.dataframe(view.source_table(summary), hide_index=True, width="stretch")


def segments(client: Any) -> None:
    segments = load(client, client.segments, missing="Segments have not been computed yet.")
    if not segments.get("items"):
        st.info(
            "Segments have not been computed yet; the worker recomputes them.",
            icon=":material/info:",
        )
        return
    left, right = st.columns([2, 3])
    left.altair_chart(view.segments_chart(segments), width="stretch")
    right.dataframe(view.segments_table(segments), hide_index=True, width="stretch")
    if segments.get("computed_at"):
        st.caption(f"Computed {view.when(segments['computed_at'])} UTC")


def evaluation(client: Any) -> None:
    report = load(
        client, client.evaluation, missing="No offline evaluation yet: run `shopwise evaluate`."
    )
    if report.get("headline"):
        st.markdown(
            f'<div class="sw-verdict">{escape(report["headline"])}</div>', unsafe_allow_html=True
        )
    meta = [
        f"dataset **{report['dataset']}**" if report.get("dataset") else "",
        f"{view.number(report.get('users'))} users, {view.number(report.get('items'))} items"
        if report.get("users")
        else "",
        f"from `{report['source']}`",
    ]
    st.markdown(" · ".join(m for m in meta if m))
    st.altair_chart(view.evaluation_chart(report), width="stretch")
    st.dataframe(view.evaluation_table(report), hide_index=True, width="stretch")
    if report.get("command"):
        st.caption(f"Command: `{report['command']}`")
