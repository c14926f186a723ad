"""Shopwise operator console: a thin Streamlit page over the admin API (``chat_ui.admin_client``).

Run: ``streamlit run chat_ui/admin.py`` (``make run`` starts it on port 8502 beside the chat).
It asks for an admin or editor login first; the bearer token stays inside the client object in
``st.session_state`` and is never shown. Editors see everything but cannot stop or promote
experiments. Tests put a fake client in ``st.session_state["admin_client"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from chat_ui import admin_view as view
from chat_ui.admin_client import AdminClient, ApiError, ApiUnavailable
from chat_ui.admin_prompts import prompts
from chat_ui.admin_sections import (
    DOWN,
    Stop,
    analytics,
    evaluation,
    experiments,
    overview,
    segments,
)

SECTIONS = ["Overview", "Experiments", "Analytics", "Segments", "Prompts", "Evaluation"]


def _client() -> Any:
    if "admin_client" not in st.session_state:
        st.session_state["admin_client"] = AdminClient()
    return st.session_state["admin_client"]


def _section(render: Callable[[Any], None], client: Any) -> None:
    try:
        render(client)
    except Stop:
        pass


# --- login -----------------------------------------------------------------------------------


def _login(client: Any) -> None:
    _, middle, _ = st.columns([1, 1.3, 1])
    with middle:
        st.markdown('<div class="sw-login"></div>', unsafe_allow_html=True)
        st.markdown(view.login_intro(), unsafe_allow_html=True)
        _flash()
        with st.form("login", border=True):
            username = st.text_input("Username", autocomplete="username")
            password = st.text_input("Password", type="password", autocomplete="current-password")
            submitted = st.form_submit_button("Sign in", type="primary", width="stretch")
        if submitted:
            if not username or not password:
                st.error("Enter your username and password.")
                return
            try:
                client.login(username, password)
            except ApiUnavailable:
                st.warning(DOWN, icon=":material/cloud_off:")
                return
            except ApiError as exc:
                if exc.status == 401:
                    st.error("Wrong username or password.")
                elif exc.status == 429:
                    st.error("Too many sign-in attempts. Wait a minute and try again.")
                else:
                    st.error(f"Sign-in failed: {exc.detail}")
                return
            st.rerun()
        st.caption(
            "Accounts are created with `shopwise admins create --username NAME --role admin`."
        )


def _logout() -> None:
    _client().logout()
    for key in ("previews", "flash", "prompt_checks", "draft_previews", "prompt_notice"):
        st.session_state.pop(key, None)


def _flash() -> None:
    flash = st.session_state.pop("flash", None)
    if flash:
        kind, text = flash
        getattr(st, kind)(text)


RENDER = [overview, experiments, analytics, segments, prompts, evaluation]


# --- the page ---------------------------------------------------------------------------------


def main() -> None:
    st.set_page_config(
        page_title="Shopwise · Operator console", page_icon=":material/monitoring:", layout="wide"
    )
    st.markdown(view.CSS, unsafe_allow_html=True)
    client = _client()
    if not client.logged_in:
        _login(client)
        return
    title, status, account = st.columns([5, 1.3, 2.2], vertical_alignment="center")
    title.markdown(view.header(), unsafe_allow_html=True)
    with account:
        who, out = st.columns([3, 1.3], vertical_alignment="center")
        who.markdown(view.who(client.username or "", client.role or ""), unsafe_allow_html=True)
        out.button("Log out", key="logout", on_click=_logout)
    try:
        health = client.health()
    except ApiUnavailable:
        st.warning(DOWN, icon=":material/cloud_off:")
        return
    st.session_state["health"] = health
    status.markdown(f"API {view.pill(health.get('status', 'down'))}", unsafe_allow_html=True)
    _flash()
    tabs = st.tabs(SECTIONS, key="section", on_change="rerun")
    for tab, render in zip(tabs, RENDER, strict=True):
        with tab:
            _section(render, client)


main()
