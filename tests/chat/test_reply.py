"""The chat reply with an LLM: a fake LLM at our interface, the same evidence check as the
recommendation explanations, one retry, and the template whenever the answer fails.

The fake answers from the prompt it was sent (refs and facts are parsed back out of it), so a
"good" answer uses only what the prompt offered and a "bad" one plants one invented fact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import httpx
import pytest
import respx
from sqlalchemy.engine import Engine

from backend.chat.ranking import ChatRetriever, KeywordRanker
from backend.chat.replies import CHAT_REPLY_PROMPTS, LLMReplies, TemplateReplies
from backend.chat.service import ChatService, DatabaseShoppers
from backend.config import PROJECT_ROOT
from backend.infra.cache import MemoryCache
from backend.llm.check import VocabularyCache
from backend.llm.client import ChatMessage, LLMClient, LLMTimeout, LLMUnavailable
from backend.llm.prompts import PromptLibrary
from backend.llm.writer import CheckedWriter
from backend.recommender.snapshot import SnapshotManager
from tests.chat.conftest import Conversation
from tests.llm.fakes import FakeLLM
from tests.llm.test_client import URL, FakeClock, completion, make_client

PROMPTS = PromptLibrary(PROJECT_ROOT / "prompts")
_ITEM = re.compile(
    r"^\[(P\d+)\] (.+?) \| category: (.+?)\n(?:F\d+: .*\n)*?F\d+: price \$([\d.]+)", re.M
)
MESSAGE = "wireless earbuds under $80"


def items(messages: Sequence[ChatMessage]) -> list[tuple[str, str, str, str]]:
    """(ref, name, category, price) of every product in the user prompt."""
    return _ITEM.findall(messages[1].content)


def good(
    intro: str = "Here are some wireless earbuds within your budget.",
    **planted: str,
):
    """An answer built from the prompt's own facts; ``planted`` overrides a ref's reason."""

    def respond(messages: Sequence[ChatMessage]) -> str:
        reasons = {ref: f"A {category} pick that fits your request." for ref, _, category, _ in
                   items(messages)}  # fmt: skip
        reasons.update(planted)
        return json.dumps(
            {
                "intro": intro,
                "intro_fact_ids": ["U1"],
                "reasons": [{"product_id": k, "reason": v} for k, v in reasons.items()],
            }
        )

    return respond


def chat_over(client: LLMClient, db: Engine, snapshots: SnapshotManager) -> ChatService:
    """The demo shop's chat with LLM replies through ``client``."""
    writer = CheckedWriter(
        client=client,
        prompts=PROMPTS,
        vocabulary=VocabularyCache(snapshots.get),
        templates=CHAT_REPLY_PROMPTS,
    )
    return ChatService(
        snapshots=snapshots,
        cache=MemoryCache(),
        prompts=PROMPTS,
        retriever=ChatRetriever(KeywordRanker()),
        shoppers=DatabaseShoppers(db),
        replies=LLMReplies(writer),
    )


@pytest.fixture
def service(demo_db: Engine, demo_snapshots: SnapshotManager):
    return lambda fake: chat_over(fake, demo_db, demo_snapshots)


def template_reply(service: ChatService, message: str = MESSAGE) -> str:
    offline = ChatService(
        snapshots=service.snapshots,
        cache=MemoryCache(),
        prompts=PROMPTS,
        retriever=service.retriever,
        shoppers=service.shoppers,
        replies=TemplateReplies(PROMPTS),
    )
    return Conversation(offline).say(message).reply


def test_a_checked_llm_reply_is_shipped_with_its_reasons_on_the_cards(service):
    fake = FakeLLM([good()])
    chat = service(fake)
    r = Conversation(chat).say(MESSAGE)
    assert r.reply_source == "llm" and r.reply_fallback_reason is None
    assert r.reply.splitlines()[0] == "Here are some wireless earbuds within your budget."
    assert r.products and all(
        p.reason == f"A {p.category} pick that fits your request." for p in r.products
    )
    assert len(fake.history) == 1
    stats = chat.reply_stats.snapshot()
    assert stats["checks_passed"] == 1 and stats["explanations_by_source"] == {"llm": 1}


def test_the_llm_sees_the_understood_state_and_facts_not_the_raw_message(service):
    fake = FakeLLM([good()])
    message = "Wireless earbuds under $80 please, for my jogging. Not black!"
    Conversation(service(fake)).say(message)
    system, user = fake.history[0]
    assert "same evidence check" not in system.content  # the template's comment is not sent
    assert "Looking for: Electronics, under $80, wireless, earbuds" in user.content
    assert "They do not want: not black" in user.content
    assert "Their own words: jogging" in user.content
    assert message not in user.content and "please" not in user.content
    assert "[P1] " in user.content and "U1: Looking for: " in user.content
    assert re.search(r"^F1: ", user.content, re.M)  # numbered facts, not an evidence dump


@pytest.mark.parametrize(
    ("planted", "reason"),
    [
        ({"P1": "Only $9.99 today, a real steal."}, "check_failed:unsupported_price"),
        ({"intro": "You will also love our Free iPhone Deluxe."}, "check_failed:unsupported_claim"),
        ({"P1": "Perfect for the Garden and the Kitchen."}, "check_failed:unsupported_claim"),
        ({"P2": "A top seller with free shipping."}, "check_failed:unsupported_claim"),
    ],
    ids=["price", "product", "category", "claim"],
)
def test_an_invented_fact_is_retried_once_then_the_template_answers(service, planted, reason):
    planted = dict(planted)
    intro = planted.pop("intro", "Here are some wireless earbuds within your budget.")
    fake = FakeLLM([good(intro, **planted), good(intro, **planted)])
    chat = service(fake)
    r = Conversation(chat).say(MESSAGE)
    assert r.reply_source == "template" and r.reply_fallback_reason == reason
    assert r.reply == template_reply(chat)
    invented = next(iter(planted.values()), intro)
    assert invented not in r.reply and all(p.reason != invented for p in r.products)
    retry = fake.history[1]
    assert retry[-1].role == "user" and "rejected because" in retry[-1].content
    stats = chat.reply_stats.snapshot()
    assert stats["checks_failed"] == 2 and stats["fallbacks_by_reason"] == {reason: 1}


def test_a_failed_first_answer_can_be_fixed_by_the_retry(service):
    fake = FakeLLM([good(P1="Now $5 off!"), good()])
    r = Conversation(service(fake)).say(MESSAGE)
    assert r.reply_source == "llm" and "$5" not in r.reply
    assert "states the price '$5'" in fake.history[1][-1].content


@pytest.mark.parametrize("error", [LLMUnavailable("down"), LLMTimeout("slow")])
def test_llm_down_means_the_template_reply(service, error):
    fake = FakeLLM([error])
    chat = service(fake)
    r = Conversation(chat).say(MESSAGE)
    assert r.reply_source == "template" and r.reply_fallback_reason == error.reason
    assert r.reply == template_reply(chat)
    assert r.products  # the shopper still gets cards with template reasons


def test_no_products_no_llm_call(service):
    fake = FakeLLM([])
    r = Conversation(service(fake)).say("wireless earbuds under $1")
    assert r.products == [] and r.reply_source == "template"
    assert r.reply_fallback_reason == "no_items" and fake.history == []


def test_not_json_is_a_bad_json_fallback(service):
    fake = FakeLLM(["Sure! Here are earbuds.", "Still no JSON"])
    r = Conversation(service(fake)).say(MESSAGE)
    assert r.reply_source == "template" and r.reply_fallback_reason == "bad_json"


def test_offline_replies_say_why_they_are_templates(components):
    chat = components.chat
    assert chat is not None and isinstance(chat.replies, TemplateReplies)
    assert chat.replies.fallback_reason == "no_api_key"


# --- the real OpenAI client, with respx at the HTTP edge -----------------------------------


def test_chat_reply_over_the_wire(demo_db, demo_snapshots):
    plan = ["good", "bad", "bad", "down"]

    def answer(request: httpx.Request) -> httpx.Response:
        step = plan.pop(0)
        if step == "down":
            return httpx.Response(500, json={"error": {"message": "overloaded"}})
        body = json.loads(request.content)
        assert body["response_format"]["type"] == "json_schema"  # the grounded answer's
        assert body["response_format"]["json_schema"]["strict"] is True
        messages = [ChatMessage(m["role"], m["content"]) for m in body["messages"]]
        respond = good() if step == "good" else good(P1="Yours for just $3.50 today.")
        return httpx.Response(200, json=completion(respond(messages)))

    chat = chat_over(make_client(FakeClock(), attempts=1), demo_db, demo_snapshots)
    with respx.mock:
        respx.post(URL).mock(side_effect=answer)
        shipped = Conversation(chat).say(MESSAGE)
        rejected = Conversation(chat).say(MESSAGE)
        down = Conversation(chat).say(MESSAGE)
    assert shipped.reply_source == "llm"
    assert shipped.reply.startswith("Here are some wireless earbuds within your budget.")
    assert rejected.reply_source == "template"
    assert rejected.reply_fallback_reason == "check_failed:unsupported_price"
    assert "$3.50" not in rejected.reply + " ".join(p.reason for p in rejected.products)
    assert down.reply_source == "template" and down.reply_fallback_reason == "llm_unavailable"
    assert plan == []
