"""The chat service: memory in the cache, feedback, filter removal, who is chatting."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from backend.chat.ranking import ChatRetriever, KeywordRanker
from backend.chat.schemas import ChatRequest
from backend.chat.service import ChatService, DatabaseShoppers, chat_state_key
from backend.config import PROJECT_ROOT
from backend.db.models import User
from backend.errors import InvalidInputError, NotFoundError
from backend.infra.cache import MemoryCache
from backend.llm.prompts import PromptLibrary
from backend.recommender.snapshot import SnapshotManager
from tests.chat.conftest import Conversation


def test_state_lives_in_the_cache_under_the_session_key(chat: ChatService) -> None:
    talk = Conversation(chat)
    talk.say("red sneakers")
    assert talk.session_id is not None
    raw = chat.cache.get(chat_state_key(talk.session_id), "state")
    assert raw is not None and '"colours":["red"]' in raw


def test_state_expires_after_the_ttl(demo_db: Engine, demo_snapshots: SnapshotManager) -> None:
    now = [0.0]
    service = ChatService(
        snapshots=demo_snapshots,
        cache=MemoryCache(clock=lambda: now[0]),
        prompts=PromptLibrary(PROJECT_ROOT / "prompts"),
        retriever=ChatRetriever(KeywordRanker()),
        shoppers=DatabaseShoppers(demo_db),
        state_ttl_seconds=60,
    )
    talk = Conversation(service)
    talk.say("books under 20")
    now[0] = 59
    assert talk.say("not hardcover").filters.max_price == 20.0
    now[0] = 59 + 61
    again = talk.say("cheaper")
    assert again.filters.max_price is None and again.turn == 1
    assert any("starting fresh" in n for n in again.notes)


def test_not_interested_hides_the_product_for_the_rest_of_the_conversation(
    chat: ChatService,
) -> None:
    talk = Conversation(chat)
    first = talk.say("wireless earbuds").products[0]
    after = talk.say(feedback={"product_id": str(first.id), "action": "not_interested"})
    assert first.id not in [p.id for p in after.products]
    assert "won't show" in after.reply
    assert first.id not in [p.id for p in talk.say("earbuds").products]
    assert first.id not in [p.id for p in talk.say("start over, earbuds").products]


def test_likes_build_a_guest_profile(chat: ChatService) -> None:
    talk = Conversation(chat)
    talk.say("something nice")
    books = talk.say("books").products
    liked = books[0]
    answer = talk.say(feedback={"product_id": str(liked.id), "action": "like"})
    assert "Saved" in answer.reply
    answer = talk.say("start over")  # no filters: the guest profile leads the ranking
    assert any(p.category == "Books" for p in answer.products[:3])
    assert any(s.name == "profile" for p in answer.products for s in p.evidence.sources)


def test_view_feedback_is_recorded_without_changing_the_cards(chat: ChatService) -> None:
    talk = Conversation(chat)
    shown = talk.say("board games").products
    quiet = talk.say(feedback={"product_id": str(shown[1].id), "action": "view"})
    assert quiet.products == [] and quiet.filters.include_tags == ["board-game"]
    assert talk.say("more like the second one").filters.similar_to.name == shown[1].name


def test_removing_a_chip(chat: ChatService) -> None:
    talk = Conversation(chat)
    answer = talk.say("red or blue jackets under 200")
    assert [c.label for c in answer.chips] == ["Clothing", "under $200", "red", "blue", "jacket"]
    answer = talk.say(remove_filter={"field": "colours", "value": "red"})
    assert answer.filters.colours == ["blue"] and "Removed “red”" in answer.reply
    answer = talk.say(remove_filter={"field": "max_price"})
    assert answer.filters.max_price is None


def test_a_known_shopper_gets_their_profile(chat: ChatService, demo_db: Engine) -> None:
    with Session(demo_db) as session:
        user = session.exec(select(User).where(User.username.startswith("a"))).first()
    assert user is not None
    answer = Conversation(chat, user_id=user.id).say("hi")
    assert answer.user_id == user.id
    assert (user.full_name or user.username) in answer.reply
    assert any(s.name == "profile" for p in answer.products for s in p.evidence.sources)


def test_unknown_shopper_and_another_shoppers_session(chat: ChatService, demo_db: Engine) -> None:
    with pytest.raises(NotFoundError):
        chat.chat_turn(ChatRequest(user_id=uuid.uuid4(), message="hi"))
    with Session(demo_db) as session:
        first, second = session.exec(select(User).limit(2)).all()
    talk = Conversation(chat, user_id=first.id)
    talk.say("hi")
    with pytest.raises(InvalidInputError, match="another shopper"):
        chat.chat_turn(ChatRequest(session_id=talk.session_id, user_id=second.id, message="x"))


def test_feedback_on_an_unknown_product_is_refused(chat: ChatService) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        chat.chat_turn(ChatRequest(feedback={"product_id": str(uuid.uuid4()), "action": "like"}))


def test_every_product_has_evidence_and_a_reason_from_it(chat: ChatService) -> None:
    answer = Conversation(chat).say("wireless earbuds under $120")
    for p in answer.products:
        assert p.evidence.strategy == "chat"
        assert p.evidence.sources and abs(sum(s.share for s in p.evidence.sources) - 1) < 0.01
        assert "$120" in p.reason
        assert {"earbuds", "wireless"} & {t.name for t in p.evidence.matched_tags}


def test_a_guests_cart_adds_and_views_shape_their_profile(chat: ChatService) -> None:
    talk = Conversation(chat)
    start = talk.say("hello")  # popular picks, no profile yet
    assert all(s.name != "profile" for p in start.products for s in p.evidence.sources)
    garden = talk.say("garden").products
    talk.say(feedback={"product_id": str(garden[0].id), "action": "add_to_cart"})
    talk.say(feedback={"product_id": str(garden[1].id), "action": "view"})
    answer = talk.say("start over")
    assert answer.products[0].category == "Garden"
    assert any(s.name == "profile" for s in answer.products[0].evidence.sources)
