"""A late chat reply belongs to whoever sent the turn, as the chat session does: another
shopper or another API key holding the ticket is told it does not exist (404)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from backend.chat.deferred import ChatBudget, DeferredReplies
from backend.chat.replies import ReplyContext, TemplateReplies
from backend.security.api_keys import Scope
from tests.chat.test_deferred import wait_for
from tests.chat.test_reply import PROMPTS
from tests.security.conftest import Secured
from tests.security.conftest import secured as secured  # the app with authentication on

READ = Scope.READ_RECOMMENDATIONS.value


class LateReplies:
    """Writes the template reply, as an LLM would its own, once the test lets it."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def reply(self, context: ReplyContext):
        assert self.gate.wait(timeout=30), "the test never let the reply be written"
        return TemplateReplies(PROMPTS).reply(context)


@pytest.fixture
def late(secured: Secured) -> Iterator[LateReplies]:
    """Every chat reply is late: the turn answers with the template and a ticket."""
    replies = LateReplies()
    secured.components.chat.replies = DeferredReplies(
        replies,
        TemplateReplies(PROMPTS),
        secured.components.cache,
        ChatBudget(budget_seconds=0.02, concurrency=1),
    )
    yield replies
    replies.gate.set()


def ticket_of(secured: Secured, headers: dict[str, str]) -> str:
    r = secured.client.post("/chat", json={"message": "a desk lamp"}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reply_status"] == "pending", body
    return str(body["reply_follow_up"])


def fetched(secured: Secured, path: str, headers: dict[str, str]) -> int:
    return secured.client.get(path, headers=headers).status_code


def written(secured: Secured, path: str, owner: dict[str, str]) -> dict:
    """Let the reply be written, and wait until its owner sees it kept."""

    def kept():
        r = secured.client.get(path, headers=owner)
        return r.status_code == 200 and r.json()["status"] != "pending" and r.json()

    return wait_for(kept)


def test_only_the_shopper_who_sent_the_turn_gets_its_late_reply(secured, late):
    storefront = secured.key(Scope.ACT_FOR_SHOPPERS.value, READ)
    alice, _ = secured.mint(storefront, "alice")
    alice_again, _ = secured.mint(storefront, "alice")  # another token of the same shopper
    bob, _ = secured.mint(storefront, "bob")
    guest, _ = secured.mint(storefront, None)
    path = ticket_of(secured, alice)
    assert fetched(secured, path, alice) == 200  # pending, and hers
    late.gate.set()
    reply = written(secured, path, alice_again)
    assert reply["status"] == "template" and reply["reply"]  # what LateReplies wrote
    for other in (bob, guest, secured.key(READ)):
        assert fetched(secured, path, other) == 404


def test_only_the_api_key_that_sent_the_turn_gets_its_late_reply(secured, late):
    mine, theirs = secured.key(READ), secured.key(READ)
    path = ticket_of(secured, mine)
    late.gate.set()
    assert written(secured, path, mine)["reply"]
    assert fetched(secured, path, theirs) == 404
    storefront = secured.key(Scope.ACT_FOR_SHOPPERS.value, READ)
    assert fetched(secured, path, secured.mint(storefront, "alice")[0]) == 404
