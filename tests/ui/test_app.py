"""The Streamlit page, driven by ``AppTest`` with the API client faked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from chat_ui.client import ApiError, ApiUnavailable

APP = str(Path(__file__).resolve().parents[2] / "chat_ui" / "app.py")
ALICE = {"id": "u-1", "username": "alice", "full_name": "Alice Lee"}


def product(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "position": n, "id": f"p-{n}", "name": f"Earbuds {n}", "category": "Electronics",
        "price": f"{40 + n}.00", "image_url": f"/images/products/p-{n}.svg", "in_stock": True,
        "quantity": 10, "tags": ["electronics", "audio"], "score": 1.0,
        "reason": f"Matches wireless <b>{n}</b>", "evidence": {"sources": []}, **extra,
    }  # fmt: skip


class FakeClient:
    base_url = "http://api.test"

    def __init__(self, *, down: bool = False, reply_source: str = "template") -> None:
        self.down = down
        self.reply_source = reply_source
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def image_url(self, p: dict[str, Any]) -> str:
        return self.base_url + p["image_url"]

    def users(self, limit: int = 100) -> list[dict[str, Any]]:
        if self.down:
            raise ApiUnavailable("down")
        return [ALICE]

    def chat(self, **body: Any) -> dict[str, Any]:
        self.calls.append(("chat", body))
        if self.down:
            raise ApiUnavailable("down")
        if body.get("message") == "boom":
            raise ApiError(422, "message must not be empty")
        chips = [{"field": "max_price", "value": None, "label": "under $80"}]
        if body.get("remove_filter"):
            chips = []
        if body.get("message") == "Show me more":  # the next page: new products, the last one
            return {
                "session_id": "s-1", "reply": "Here are 2 more for under $80.",
                "products": [product(4), product(5)], "chips": chips, "has_more": False,
                "suggestions": ["Cheaper"], "reply_source": "template",
            }  # fmt: skip
        return {
            "session_id": "s-1", "reply": "Here are 3 picks for under $80.",
            "products": [product(1), product(2), product(3, in_stock=False, quantity=0)],
            "chips": chips, "suggestions": ["Show me more", "Cheaper", "Start over"],
            "has_more": True, "reply_source": self.reply_source,
        }  # fmt: skip

    def event(self, **body: Any) -> dict[str, Any]:
        self.calls.append(("event", body))
        return {"interaction_id": "i-1", "duplicate": False}

    def recommend(self, user_id: str, top_n: int = 4) -> dict[str, Any]:
        self.calls.append(("recommend", {"user_id": user_id}))
        return {
            "recommended_products": [product(9)],
            "llm_explanation": "Hi Alice! Here is a pick for you.",
            "explanation_source": self.explanation_source,
        }

    explanation_source = "template"
    stream: tuple[tuple[str, str], ...] = ()

    def stream_explanation(self, user_id: str) -> Any:
        self.calls.append(("stream", {"user_id": user_id}))
        yield from self.stream


def run_app(client: FakeClient) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=20)
    at.session_state["client"] = client
    return at.run()


def chat_calls(client: FakeClient) -> list[dict[str, Any]]:
    return [body for kind, body in client.calls if kind == "chat"]


def button(at: AppTest, key_prefix: str) -> Any:
    return next(b for b in at.button if b.key and b.key.startswith(key_prefix))


def test_first_screen_greets_and_offers_the_guest_option() -> None:
    at = run_app(FakeClient())
    assert not at.exception
    assert "What can I help you find" in at.chat_message[0].markdown[0].value
    assert at.selectbox[0].options[0] == "Continue as guest"
    assert "Alice Lee (@alice)" in at.selectbox[0].options


def test_a_message_shows_the_reply_cards_chips_and_suggestions() -> None:
    client = FakeClient()
    at = run_app(client)
    at.chat_input[0].set_value("wireless earbuds under $80").run()
    assert not at.exception
    assert chat_calls(client)[0]["message"] == "wireless earbuds under $80"
    assert chat_calls(client)[0]["session_id"] is None
    html = " ".join(m.value for m in at.markdown)
    assert html.count('data-testid="product-card"') == 3
    assert "http://api.test/images/products/p-1.svg" in html
    assert "Matches wireless &lt;b&gt;1&lt;/b&gt;" in html  # API text is escaped
    assert "Out of stock" in html
    labels = [b.label for b in at.button]
    assert "under $80" in labels and "Cheaper" in labels
    # The out-of-stock card cannot be added to the cart.
    assert button(at, "cart-").disabled is False
    assert [b for b in at.button if b.key == "cart-1-p-3"][0].disabled is True


def test_the_session_id_is_reused_on_the_next_turn() -> None:
    client = FakeClient()
    at = run_app(client)
    at.chat_input[0].set_value("earbuds").run()
    at.chat_input[0].set_value("cheaper").run()
    assert chat_calls(client)[1]["session_id"] == "s-1"


def test_removing_a_chip_sends_remove_filter() -> None:
    client = FakeClient()
    at = run_app(client)
    at.chat_input[0].set_value("earbuds under 80").run()
    button(at, "chip-").click().run()
    assert chat_calls(client)[-1]["remove_filter"] == {"field": "max_price"}
    assert not any(b.key and b.key.startswith("chip-") for b in at.button)


def test_a_suggestion_is_sent_as_a_message() -> None:
    client = FakeClient()
    at = run_app(client)
    at.chat_input[0].set_value("earbuds").run()
    button(at, "suggest-0").click().run()
    assert chat_calls(client)[-1]["message"] == "Cheaper"


def test_guest_like_and_not_interested_go_to_the_conversation_only() -> None:
    client = FakeClient()
    at = run_app(client)
    at.chat_input[0].set_value("earbuds").run()
    button(at, "like-").click().run()
    assert chat_calls(client)[-1]["feedback"] == {"product_id": "p-1", "action": "like"}
    button(at, "nope-").click().run()
    assert chat_calls(client)[-1]["feedback"] == {"product_id": "p-1", "action": "not_interested"}
    assert not [c for c in client.calls if c[0] == "event"]


def test_a_known_shopper_gets_events_and_the_for_you_panel() -> None:
    client = FakeClient()
    at = run_app(client)
    at.selectbox[0].set_value("Alice Lee (@alice)").run()
    assert ("recommend", {"user_id": "u-1"}) in client.calls
    assert any("Here is a pick for you" in m.value for m in at.sidebar.expander[0].markdown)
    at.chat_input[0].set_value("earbuds").run()
    assert chat_calls(client)[-1]["user_id"] == "u-1"
    button(at, "cart-").click().run()
    button(at, "like-").click().run()
    events = [body for kind, body in client.calls if kind == "event"]
    assert [(e["action"], e["product_id"]) for e in events] == [
        ("add_to_cart", "p-1"),
        ("wishlist", "p-1"),
    ]


def test_view_shows_the_details_under_the_card() -> None:
    client = FakeClient()
    at = run_app(client)
    at.chat_input[0].set_value("earbuds").run()
    button(at, "view-").click().run()
    assert any("Tags: audio" in c.value for c in at.caption)


@pytest.mark.parametrize("down_from_start", [True, False])
def test_a_friendly_message_when_the_api_is_down(down_from_start: bool) -> None:
    client = FakeClient(down=down_from_start)
    at = run_app(client)
    client.down = True
    at.chat_input[0].set_value("earbuds").run()
    assert not at.exception
    assert any("taking a short break" in w.value for w in at.warning)


def test_an_api_refusal_is_shown_politely() -> None:
    at = run_app(FakeClient())
    at.chat_input[0].set_value("boom").run()
    assert not at.exception
    assert any("couldn't do that" in m.value for m in at.chat_message[-1].markdown)


def test_show_more_asks_for_the_next_products_and_disappears_at_the_end() -> None:
    client = FakeClient()
    at = run_app(client)
    at.chat_input[0].set_value("earbuds under 80").run()
    labels = [b.label for b in at.button]
    assert "Show more" in labels
    assert "Show me more" not in labels  # the suggestion is the button, not twice
    button(at, "show-more").click().run()
    assert not at.exception
    assert chat_calls(client)[-1]["message"] == "Show me more"
    assert chat_calls(client)[-1]["session_id"] == "s-1"
    assert "Show more" not in [b.label for b in at.button]  # nothing left to show
    cards = [b.key for b in at.button if b.key and b.key.startswith("view-")]
    assert cards == ["view-3-p-4", "view-3-p-5"]  # the newest answer's cards have buttons


def test_every_card_has_the_four_buttons_in_order() -> None:
    at = run_app(FakeClient())
    at.chat_input[0].set_value("earbuds").run()
    first = [b.label for b in at.button if b.key and b.key.endswith("-1-p-1")]
    assert first == ["View", "Add to cart", "Like", "Not for me"]


@pytest.mark.parametrize(("source", "badge"), [("llm", True), ("template", False)])
def test_an_llm_reply_says_it_was_checked(source: str, badge: bool) -> None:
    at = run_app(FakeClient(reply_source=source))
    at.chat_input[0].set_value("earbuds").run()
    captions = " ".join(c.value for c in at.caption)
    assert ("checked against them" in captions) is badge


@pytest.mark.parametrize(
    ("stream", "shown"),
    [
        # Checked pieces, then the final text that they begin.
        ((("delta", "Hi Alice!"), ("delta", "\n- Earbuds: wireless."),
          ("final", "Hi Alice!\n- Earbuds: wireless.")), "Hi Alice!\n- Earbuds: wireless."),
        # The whole answer failed its check: the template replaces what was shown.
        ((("delta", "Hi Alice!"), ("final", "Template text for Alice.")),
         "Template text for Alice."),
    ],
)  # fmt: skip
def test_why_these_shows_the_streamed_explanation_and_keeps_the_final_text(
    stream: tuple[tuple[str, str], ...], shown: str
) -> None:
    client = FakeClient()
    client.explanation_source, client.stream = "llm", stream
    at = run_app(client)
    at.selectbox[0].set_value("Alice Lee (@alice)").run()
    at.sidebar.button(key="why").click().run()
    assert ("stream", {"user_id": "u-1"}) in client.calls
    texts = [" ".join(m.value.replace("\\", "").split()) for m in at.sidebar.markdown]
    assert " ".join(shown.split()) in texts, texts  # (plain() turns newlines into breaks)
    assert not any("Hi Alice!" in t and "Template" in t for t in texts)  # never both
