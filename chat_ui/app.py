"""Shopwise assistant: a thin Streamlit page over the API (``chat_ui.client``).

Run: ``streamlit run chat_ui/app.py`` (``make run`` starts it with the API). Everything the
page knows comes from the API; it keeps only the conversation's session id and its history.
Tests put a fake client in ``st.session_state["client"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from chat_ui.client import ApiError, ApiUnavailable, ShopwiseClient
from chat_ui.components import CSS, hero, mini_product, plain, product_card

GUEST = "Continue as guest"
DOWN = (
    "Our shop assistant is taking a short break: the shop's server isn't answering right now. "
    "Please try again in a moment."
)
CARD_COLUMNS = 3
ASSISTANT = ":material/storefront:"
SHOPPER = ":material/person:"
SHOW_MORE = "Show me more"  # plain text the API's parser reads as "the next results"
LLM_BADGE = "Written by the assistant's AI from the product facts, and checked against them."


@dataclass(frozen=True)
class CardButton:
    """One button under a product card; ``action`` is what ``_card_action`` does with it."""

    action: str
    label: str
    icon: str
    key: str
    needs_stock: bool = False


CARD_BUTTONS = (
    CardButton("view", "View", ":material/visibility:", "view"),
    CardButton("add_to_cart", "Add to cart", ":material/add_shopping_cart:", "cart", True),
    CardButton("like", "Like", ":material/favorite:", "like"),
    CardButton("not_interested", "Not for me", ":material/block:", "nope"),
)
BUTTONS_PER_ROW = 2


def _client() -> Any:
    if "client" not in st.session_state:
        st.session_state["client"] = ShopwiseClient()
    return st.session_state["client"]


def _init() -> None:
    defaults: dict[str, Any] = {
        "history": [],
        "session_id": None,
        "user_id": None,
        "user_name": None,
        "viewing": None,
        "flash": None,
        "api_down": False,
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


# --- actions (button callbacks) ------------------------------------------------------------


def _send(client: Any, *, message: str = "", **extra: Any) -> None:
    """One chat call; its answer becomes the newest assistant turn."""
    if message:
        st.session_state["history"].append({"role": "user", "text": message})
    try:
        answer = client.chat(
            message=message,
            session_id=st.session_state["session_id"],
            user_id=st.session_state["user_id"],
            **extra,
        )
    except ApiUnavailable:
        st.session_state["api_down"] = True
        st.session_state["history"].append({"role": "assistant", "text": DOWN, "down": True})
        return
    except ApiError as exc:
        st.session_state["history"].append(
            {"role": "assistant", "text": f"Sorry, I couldn't do that: {exc.detail}"}
        )
        return
    st.session_state["api_down"] = False
    st.session_state["session_id"] = answer["session_id"]
    st.session_state["history"].append(
        {
            "role": "assistant",
            "text": answer["reply"],
            "products": answer.get("products", []),
            "chips": answer.get("chips", []),
            "suggestions": answer.get("suggestions", []),
            "has_more": answer.get("has_more", False),
            "reply_source": answer.get("reply_source", "template"),
        }
    )


def _remove_chip(client: Any, chip: dict[str, Any]) -> None:
    removal = {"field": chip["field"]}
    if chip.get("value") is not None:
        removal["value"] = chip["value"]
    _send(client, remove_filter=removal)


def _card_action(client: Any, product: dict[str, Any], action: str) -> None:
    """Card buttons: events for a known shopper, and the conversation's memory for everyone."""
    user_id = st.session_state["user_id"]
    event = {"view": "view", "add_to_cart": "add_to_cart", "like": "wishlist"}.get(action)
    try:
        if user_id and event:
            client.event(user_id=user_id, action=event, product_id=product["id"])
        if action in ("like", "not_interested"):
            _send(client, feedback={"product_id": product["id"], "action": action})
        elif not user_id:  # a guest's views and cart adds shape their conversation profile
            client.chat(
                session_id=st.session_state["session_id"],
                feedback={"product_id": product["id"], "action": action},
            )
    except ApiUnavailable:
        st.session_state["flash"] = DOWN
        return
    except ApiError as exc:
        st.session_state["flash"] = f"Sorry, that didn't work: {exc.detail}"
        return
    if action == "view":
        st.session_state["viewing"] = product["id"]
    elif action == "add_to_cart":
        st.session_state["flash"] = f"Added {product['name']} to your cart."
    elif action == "like":
        st.session_state["flash"] = f"Saved {product['name']} to your wishlist."


def _pick_user(options: dict[str, dict[str, Any] | None]) -> None:
    choice = options.get(st.session_state["who"])
    st.session_state["user_id"] = choice["id"] if choice else None
    st.session_state["user_name"] = (
        (choice.get("full_name") or choice["username"]) if choice else None
    )
    st.session_state["history"] = []
    st.session_state["session_id"] = None
    st.session_state.pop("for_you", None)


# --- rendering -----------------------------------------------------------------------------


def _sidebar(client: Any) -> None:
    with st.sidebar:
        st.markdown("### Who's shopping?")
        options: dict[str, dict[str, Any] | None] = {GUEST: None}
        try:
            users = st.session_state.get("users")
            if users is None:
                users = client.users(limit=100)
                st.session_state["users"] = users
            for user in users:
                options[f"{user.get('full_name') or user['username']} (@{user['username']})"] = user
        except ApiUnavailable:
            st.caption("Shopper list unavailable while the server is down.")
        except ApiError as exc:
            st.caption(f"Shopper list unavailable: {exc.detail}")
        st.selectbox(
            "Shopper",
            list(options),
            key="who",
            on_change=_pick_user,
            args=(options,),
            label_visibility="collapsed",
        )
        if st.button("New conversation", icon=":material/restart_alt:", width="stretch"):
            st.session_state["history"] = []
            st.session_state["session_id"] = None
        _for_you(client)


def _for_you(client: Any) -> None:
    user_id = st.session_state["user_id"]
    st.markdown("### For you")
    if not user_id:
        st.caption("Pick a shopper above to see picks based on their history.")
        return
    data = st.session_state.get("for_you")
    if data is None:
        try:
            data = client.recommend(user_id, top_n=4)
        except (ApiUnavailable, ApiError):
            st.caption("Recommendations are unavailable right now.")
            return
        st.session_state["for_you"] = data
    items = data.get("recommended_products", [])
    html = "".join(mini_product(p, client.image_url(p)) for p in items)
    st.markdown(f'<div class="sw-foryou">{html}</div>', unsafe_allow_html=True)
    if data.get("explanation_source") == "llm" and hasattr(client, "stream_explanation"):
        if st.button("Why these?", icon=":material/auto_awesome:", key="why"):
            area, shown = st.empty(), ""
            try:  # checked pieces as they come; the final text replaces them
                for kind, text in client.stream_explanation(user_id):
                    shown = shown + text if kind == "delta" else text
                    area.markdown(plain(shown))
            except (ApiUnavailable, ApiError):
                area.markdown(plain(data.get("llm_explanation", "")))
            return
    with st.expander("Why these picks?"):
        st.markdown(plain(data.get("llm_explanation", "")))


def _cards(client: Any, entry: dict[str, Any], index: int, latest: bool) -> None:
    products = entry.get("products") or []
    for start in range(0, len(products), CARD_COLUMNS):
        columns = st.columns(CARD_COLUMNS)
        for column, product in zip(columns, products[start : start + CARD_COLUMNS], strict=False):
            with column:
                st.markdown(
                    product_card(product, client.image_url(product)), unsafe_allow_html=True
                )
                if not latest:
                    continue
                key = f"{index}-{product['id']}"
                for row in range(0, len(CARD_BUTTONS), BUTTONS_PER_ROW):
                    specs = CARD_BUTTONS[row : row + BUTTONS_PER_ROW]
                    for column, spec in zip(st.columns(BUTTONS_PER_ROW), specs, strict=False):
                        column.button(
                            spec.label,
                            key=f"{spec.key}-{key}",
                            icon=spec.icon,
                            width="stretch",
                            disabled=spec.needs_stock and not product.get("in_stock"),
                            on_click=_card_action,
                            args=(client, product, spec.action),
                        )
                if st.session_state.get("viewing") == product["id"]:
                    tags = ", ".join(product.get("tags", [])[1:])
                    sources = "; ".join(
                        s["detail"] for s in product.get("evidence", {}).get("sources", [])
                    )
                    st.caption(plain(f"Tags: {tags}. Why: {sources}."))


def _chips(client: Any, entry: dict[str, Any]) -> None:
    chips = entry.get("chips") or []
    if chips:
        st.markdown(
            '<div class="sw-label">What I understood (tap to remove)</div>', unsafe_allow_html=True
        )
        with st.container(horizontal=True, gap="small"):
            for i, chip in enumerate(chips):
                st.button(
                    chip["label"],
                    key=f"chip-{i}-{chip['field']}-{chip.get('value')}",
                    icon=":material/close:",
                    icon_position="right",
                    on_click=_remove_chip,
                    args=(client, chip),
                    help="Remove this filter",
                )
    if entry.get("has_more"):
        st.button(
            "Show more",
            key="show-more",
            icon=":material/expand_more:",
            on_click=_send,
            args=(client,),
            kwargs={"message": SHOW_MORE},
            help="The next products for the same request",
        )
    suggestions = [t for t in entry.get("suggestions") or [] if t != SHOW_MORE]
    if suggestions:
        st.markdown('<div class="sw-label">Try</div>', unsafe_allow_html=True)
        with st.container(horizontal=True, gap="small"):
            for i, text in enumerate(suggestions):
                st.button(
                    text,
                    key=f"suggest-{i}",
                    type="tertiary",
                    icon=":material/arrow_forward:",
                    on_click=_send,
                    args=(client,),
                    kwargs={"message": text},
                )


def _history(client: Any) -> None:
    history = st.session_state["history"]
    last_assistant = max((i for i, e in enumerate(history) if e["role"] == "assistant"), default=-1)
    if not history:
        with st.chat_message("assistant", avatar=ASSISTANT):
            name = st.session_state["user_name"]
            st.markdown(plain(f"Hi{' ' + name if name else ''}! What can I help you find today?"))
    for i, entry in enumerate(history):
        avatar = ASSISTANT if entry["role"] == "assistant" else SHOPPER
        with st.chat_message(entry["role"], avatar=avatar):
            if entry.get("down"):
                st.warning(entry["text"], icon=":material/cloud_off:")
            else:
                st.markdown(plain(entry["text"]))
            if entry.get("reply_source") == "llm":
                st.caption(LLM_BADGE, help="If the AI's text fails the check, you see ours.")
            if i == last_assistant:
                _cards(client, entry, i, latest=True)
            elif entry.get("products"):
                count = len(entry["products"])
                with st.expander(f"The {count} product{'s' if count != 1 else ''} I showed here"):
                    _cards(client, entry, i, latest=False)
            if i == last_assistant:
                _chips(client, entry)


def main() -> None:
    st.set_page_config(page_title="Shopwise assistant", page_icon="🛍️", layout="wide")
    st.markdown(CSS, unsafe_allow_html=True)
    _init()
    client = _client()
    _sidebar(client)
    st.markdown(hero(), unsafe_allow_html=True)
    flash = st.session_state.pop("flash", None)
    if flash:
        st.toast(flash)
    _history(client)
    message = st.chat_input("What are you looking for?")
    if message:
        _send(client, message=message.strip())
        st.rerun()


main()
