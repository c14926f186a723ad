"""The chat within its budget: a late LLM reply is replaced by the template at once and kept
for a follow-up fetch; a late LLM parser by the rules. The fake LLM blocks until the test
lets it answer, so "late" is a fact of the test, not a race."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from backend.chat.deferred import (
    BudgetedParser,
    ChatBudget,
    DeferredReplies,
    ReplyFollowUp,
    follow_up,
)
from backend.chat.parser import RuleParser
from backend.chat.replies import LLMReplies, Reply, TemplateReplies
from backend.chat.state import FilterUpdate
from backend.infra.cache import Cache, MemoryCache
from backend.llm.slots import LocalModelSlots
from backend.recommender.snapshot import SnapshotManager
from tests.chat.conftest import Conversation
from tests.chat.test_reply import MESSAGE, PROMPTS, chat_over, good, template_reply
from tests.llm.fakes import FakeLLM
from tests.waiting import wait_for


def settled(cache: Cache, ticket: str | None) -> ReplyFollowUp | None:
    """The reply kept under ``ticket`` once it is no longer pending (None until then)."""
    kept = follow_up(cache, ticket or "", owner=None)
    return kept if kept is not None and kept.status != "pending" else None


def blocked(answer, gate: threading.Event):
    def respond(messages):
        assert gate.wait(timeout=30), "the test never let the fake LLM answer"
        return answer(messages)

    return respond


def deferred_chat(fake: FakeLLM, db: Engine, snapshots: SnapshotManager, budget: float):
    chat = chat_over(fake, db, snapshots)
    assert isinstance(chat.replies, LLMReplies)
    chat.replies = DeferredReplies(
        chat.replies,
        TemplateReplies(PROMPTS),
        chat.cache,
        ChatBudget(budget_seconds=budget, concurrency=1),
    )
    return chat


def test_a_late_llm_reply_goes_out_as_the_template_and_follows_by_ticket(demo_db, demo_snapshots):
    gate = threading.Event()
    chat = deferred_chat(FakeLLM([blocked(good(), gate)]), demo_db, demo_snapshots, budget=0.2)
    r = Conversation(chat).say(MESSAGE)
    assert (r.reply_status, r.reply_source, r.reply_fallback_reason) == (
        "pending",
        "template",
        "pending",
    )
    assert r.reply == template_reply(chat)
    ticket = r.reply_follow_up.rsplit("/", 1)[1]
    assert r.reply_follow_up == f"/chat/replies/{ticket}"
    assert follow_up(chat.cache, ticket, owner=None).status == "pending"
    gate.set()
    done = wait_for(lambda: settled(chat.cache, ticket), "the reply's outcome", interval=0.01)
    assert (done.status, done.reply_source) == ("ready", "llm")
    assert done.reply.startswith("Here are some wireless earbuds within your budget.")
    shown = {str(p.id): p.category for p in r.products}
    assert done.reasons == {
        pid: f"A {category} pick that fits your request." for pid, category in shown.items()
    }


def test_an_llm_reply_within_the_budget_is_the_reply(demo_db, demo_snapshots):
    chat = deferred_chat(FakeLLM([good()]), demo_db, demo_snapshots, budget=60.0)
    r = Conversation(chat).say(MESSAGE)
    assert (r.reply_status, r.reply_source, r.reply_follow_up) == ("ready", "llm", None)


def test_a_busy_model_is_not_queued_for_the_template_answers_at_once():
    gate = threading.Event()

    class Slow:
        def reply(self, context):
            gate.wait(timeout=30)
            return TemplateReplies(PROMPTS).reply(context)

    budget = ChatBudget(budget_seconds=0.02, concurrency=1)
    replies = DeferredReplies(Slow(), TemplateReplies(PROMPTS), MemoryCache(), budget)
    context = _context()
    try:
        reasons = [replies.reply(context).fallback_reason for _ in range(6)]
    finally:
        gate.set()
    assert reasons == ["pending"] * 5 + ["busy"]  # one running, four waiting, then none


def _context():
    from backend.chat.replies import ReplyContext

    return ReplyContext(
        user_name=None,
        acknowledgement=None,
        understood=[],
        wanted=[],
        unwanted=[],
        words="",
        candidates=0,
        first_turn=True,
        understood_nothing=False,
        more=False,
        notes=[],
        items=(),
    )


class FakeParser:
    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.last_source = "llm"

    def parse(self, message, vocabulary, *, shown_count):
        if self.gate is not None:
            self.gate.wait(timeout=30)
        return FilterUpdate(max_price=12345)


@pytest.mark.parametrize("late", [True, False])
def test_a_late_llm_parser_leaves_the_message_to_the_rules(vocabulary, late):
    gate = threading.Event()
    parser = BudgetedParser(
        FakeParser(gate if late else None),
        RuleParser(),
        ChatBudget(budget_seconds=0.2 if late else 60.0, concurrency=1),
    )
    try:
        update = parser.parse("red shoes under $50", vocabulary, shown_count=0)
    finally:
        gate.set()
    assert parser.last_source == ("rules" if late else "llm")
    assert (update.max_price == 12345) is not late  # the rules read $50


def test_the_follow_up_route(client, tmp_path: Path):
    replies = DeferredReplies(
        TemplateReplies(PROMPTS),
        TemplateReplies(PROMPTS),
        client.app.state.components.cache,
        ChatBudget(budget_seconds=1, concurrency=1),
    )
    ticket = uuid.uuid4().hex
    assert client.get(f"/chat/replies/{ticket}").status_code == 404
    assert client.get("/chat/replies/not-a-ticket").status_code == 422
    replies._store(ticket, "open", follow_up_of("ready"))  # auth off: every caller is "open"
    body = client.get(f"/chat/replies/{ticket}").json()
    assert (body["status"], body["reply"]) == ("ready", "Hello")


def follow_up_of(status):
    from backend.chat.deferred import ReplyFollowUp

    return ReplyFollowUp(status=status, reply="Hello", reply_source="llm")


def test_a_chat_model_call_waits_for_a_slot_the_explanation_queue_holds(vocabulary):
    """The chat and the explanation jobs share the model server's slots: while a job holds
    the only one, the chat's reply is not sent to the model; it is once the slot is free."""
    slots = LocalModelSlots(1)
    job = slots.acquire(timeout=0)  # an explanation job is writing
    called = threading.Event()

    class Recording:
        def reply(self, context):
            called.set()
            return Reply(text="From the model.", source="llm")

    budget = ChatBudget(budget_seconds=0.2, concurrency=1, slots=slots)
    replies = DeferredReplies(Recording(), TemplateReplies(PROMPTS), MemoryCache(), budget)
    reply = replies.reply(_context())
    assert reply.fallback_reason == "pending" and not called.is_set()
    job.release()
    assert called.wait(timeout=10)
    kept = wait_for(
        lambda: settled(replies.cache, reply.pending), "the reply's outcome", interval=0.01
    )
    assert (kept.status, kept.reply) == ("ready", "From the model.")


def test_a_parse_that_got_no_slot_in_time_is_never_sent(vocabulary):
    slots = LocalModelSlots(1)
    job = slots.acquire(timeout=0)
    llm = FakeParser()
    calls = []
    llm.parse = lambda *a, **k: calls.append(1) or FilterUpdate()  # type: ignore[method-assign]
    budget = ChatBudget(budget_seconds=0.2, concurrency=1, slots=slots)
    parser = BudgetedParser(llm, RuleParser(), budget)
    update = parser.parse("red shoes under $50", vocabulary, shown_count=0)
    assert (parser.last_source, update.max_price) == ("rules", 50)
    job.release()
    # The pool's thread sees the turn went on without it and gives up instead of asking.
    later = slots.acquire(timeout=5)
    assert later is not None
    time.sleep(0.6)  # longer than the pool's poll: a parse still waiting would have run
    assert calls == []
    later.release()
