"""``chat_turn()``: state from the cache → parse → new state → retrieval → evidence → reply.

The conversation state lives in the cache (Redis or in-process) under
``chat:session:{session_id}`` with a TTL, so any API replica can answer the next turn and an
abandoned conversation simply expires. Session ids are made by the server and a session
belongs to whoever started it: an id the server does not know (expired, or invented by the
client) starts a new session with a new id, and another caller's id is answered 404. The
service never trusts the message beyond the ``FilterUpdate`` the parser returns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.chat.chips import describe, suggestions
from backend.chat.deferred import ReplyFollowUp, follow_up
from backend.chat.parser import MessageParser, RuleParser
from backend.chat.ranking import ChatRetriever, RetrievalRequest, Retrieved
from backend.chat.replies import ChatReplies, Reply, ReplyContext, TemplateReplies
from backend.chat.schemas import ChatFeedback, ChatProduct, ChatRequest, ChatResponse
from backend.chat.state import (
    MAX_SEEN,
    ChatFilters,
    ChatState,
    GuestEvent,
    apply_update,
    remove_filter,
)
from backend.chat.vocabulary import VocabularyCache
from backend.db import crud
from backend.db.history import recent_history
from backend.db.models import utcnow
from backend.errors import InvalidInputError, NotFoundError
from backend.infra.cache import Cache
from backend.llm.prompts import PromptLibrary
from backend.llm.stats import ExplanationStats
from backend.llm.writer import ExplainedItem
from backend.recommender.profile import InteractionRecord, UserProfile, weighted_profile
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager

log = logging.getLogger(__name__)


def chat_state_key(session_id: uuid.UUID) -> str:
    return f"chat:session:{session_id}"


# --- who is chatting ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shopper:
    name: str
    interactions: list[InteractionRecord]


class Shoppers(Protocol):
    def lookup(self, user_id: uuid.UUID) -> Shopper | None: ...


class DatabaseShoppers:
    """A known shopper's name and newest interactions (two indexed queries)."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def lookup(self, user_id: uuid.UUID) -> Shopper | None:
        with Session(self.db) as session:
            user = crud.get_user(session=session, user_id=user_id)
            if user is None:
                return None
            records = recent_history(session=session, user_id=user_id)
        return Shopper(name=user.full_name or user.username, interactions=records)


# --- the service ---------------------------------------------------------------------------


@dataclass
class _Turn:
    """What one turn learned besides the new state, for the reply."""

    acknowledgement: str | None = None
    understood_nothing: bool = False
    parser: Literal["rules", "llm"] = "rules"
    more: bool = False  # the next page of the same search


class ChatService:
    def __init__(
        self,
        *,
        snapshots: SnapshotManager,
        cache: Cache,
        prompts: PromptLibrary,
        retriever: ChatRetriever,
        shoppers: Shoppers,
        parser: MessageParser | None = None,
        replies: ChatReplies | None = None,
        reply_stats: ExplanationStats | None = None,
        state_ttl_seconds: int = 1800,
        top_n: int = 6,
        half_life_days: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.snapshots = snapshots
        self.cache = cache
        self.prompts = prompts
        self.retriever = retriever
        self.shoppers = shoppers
        self.parser: MessageParser = parser or RuleParser()
        self.replies: ChatReplies = replies or TemplateReplies(prompts)
        # Evidence checks and sources of LLM replies (``GET /chat/stats``), like explanations'.
        self.reply_stats = reply_stats or getattr(replies, "stats", None) or ExplanationStats()
        self.state_ttl_seconds = state_ttl_seconds
        self.top_n = top_n
        self.half_life_days = half_life_days
        self.clock = clock
        self.vocabularies = VocabularyCache()

    def follow_up(self, ticket: str, *, owner: str | None = None) -> ReplyFollowUp | None:
        """The LLM's reply to a turn answered with the template while it wrote, for the
        caller who sent the turn (None: unknown or expired ticket, or another caller's)."""
        return follow_up(self.cache, ticket, owner=owner)

    def chat_turn(self, request: ChatRequest, *, owner: str | None = None) -> ChatResponse:
        """One turn; ``owner`` is the caller's identity, the only one who may continue it."""
        snapshot = self.snapshots.get()
        vocabulary = self.vocabularies.get(snapshot)
        turn = _Turn()
        notes: list[str] = []
        state = self._load(request.session_id, owner, notes)
        shopper = self._shopper(state, request.user_id)
        if request.user_id is not None:
            state.user_id = request.user_id

        if request.feedback is not None:
            state, turn.acknowledgement = self._feedback(state, request.feedback, snapshot)
            quiet = request.feedback.action in ("view", "add_to_cart")
            if quiet and request.remove_filter is None and not request.message.strip():
                # Recorded only: the cards stay as they are, so "the second one" still means
                # what the shopper sees. The next turn's ranking uses the feedback.
                self._save(state)
                ack = Reply(text=turn.acknowledgement or "Noted.")
                return self._response(state, ack, [], [], turn)
        if request.remove_filter is not None:
            removal = request.remove_filter
            wanted = (removal.field, removal.value)
            chip = next((c for c in describe(state.filters) if (c.field, c.value) == wanted), None)
            label = chip.label if chip else removal.value or removal.field.replace("_", " ")
            state.filters = remove_filter(state.filters, removal.field, removal.value)
            turn.acknowledgement = f"Removed “{label}”."
        before = state.filters.model_copy(deep=True)
        if request.message.strip():
            update = self.parser.parse(request.message, vocabulary, shown_count=len(state.shown))
            turn.parser = (
                "llm" if getattr(self.parser, "last_source", "rules") == "llm" else "rules"
            )
            state, applied_notes = apply_update(state, update, snapshot)
            notes.extend([*update.notes, *applied_notes])
            # Paging only while the search stays the same; "more red ones" is a new search.
            turn.more = update.more and bool(state.shown) and state.filters == before
            turn.understood_nothing = update.changes_nothing or (
                update.more and not turn.more and state.filters == before
            )
        if not turn.more:
            state.seen = []

        profile = self._profile(state, shopper, snapshot)
        retrieved = self.retriever.retrieve(
            snapshot,
            vocabulary,
            RetrievalRequest(
                filters=state.filters,
                top_n=self.top_n,
                profile=profile,
                liked=state.liked,
                disliked=state.disliked,
                exclude=state.seen,
            ),
        )
        notes.extend(retrieved.notes)
        if state.filters.query and not retrieved.query_matched:
            notes.append(f"Nothing in the shop mentions “{state.filters.query}”.")
        products = self._products(snapshot, state.filters, retrieved)
        notes = list(dict.fromkeys(notes))
        reply = self.replies.reply(
            self._reply_context(state, shopper, turn, retrieved, snapshot, notes)
        )
        if reply.reasons:  # checked LLM reasons replace the template ones on the cards
            for product in products:
                product.reason = reply.reasons.get(product.id, product.reason)
        if products or not turn.more:
            state.shown = [p.id for p in products]
        state.seen = [*state.seen, *(p.id for p in products)][-MAX_SEEN:]
        state.page = state.page + 1 if turn.more else 1
        state.turns += 1
        self._save(state)
        response = self._response(state, reply, products, notes, turn)
        response.has_more = retrieved.candidates > len(products)
        response.suggestions = suggestions(
            state.filters, products, retrieved, snapshot, has_more=response.has_more
        )
        return response

    def _reply_context(
        self,
        state: ChatState,
        shopper: Shopper | None,
        turn: _Turn,
        retrieved: Retrieved,
        snapshot: CatalogSnapshot,
        notes: list[str],
    ) -> ReplyContext:
        chips = describe(state.filters)
        negative = {"exclude_categories", "exclude_colours", "exclude_tags", "exclude_brands"}
        return ReplyContext(
            user_name=shopper.name if shopper else None,
            acknowledgement=turn.acknowledgement,
            understood=[c.label for c in chips],
            wanted=[c.label for c in chips if c.field not in negative and c.field != "query"],
            unwanted=[c.label for c in chips if c.field in negative],
            words=state.filters.query,
            candidates=retrieved.candidates,
            first_turn=state.turns == 0,
            understood_nothing=turn.understood_nothing and state.filters.is_empty,
            more=turn.more,
            notes=notes,
            items=tuple(
                ExplainedItem(snapshot.products[hit.index], hit.evidence) for hit in retrieved.items
            ),
            owner=state.owner,
        )

    def _response(
        self,
        state: ChatState,
        reply: Reply,
        products: list[ChatProduct],
        notes: list[str],
        turn: _Turn,
    ) -> ChatResponse:
        return ChatResponse(
            session_id=state.session_id,
            user_id=state.user_id,
            reply=reply.text,
            reply_source=reply.source,
            reply_fallback_reason=reply.fallback_reason,
            reply_status=(
                "pending" if reply.pending else "ready" if reply.source == "llm" else "template"
            ),
            reply_follow_up=f"/chat/replies/{reply.pending}" if reply.pending else None,
            parser=turn.parser,
            products=products,
            filters=state.filters,
            chips=describe(state.filters),
            suggestions=[],
            notes=notes,
            turn=state.turns,
            page=state.page,
        )

    # -- steps ----------------------------------------------------------------------------

    def _load(self, session_id: uuid.UUID | None, owner: str | None, notes: list[str]) -> ChatState:
        if session_id is None:
            return ChatState(session_id=uuid.uuid4(), owner=owner)
        raw = self.cache.get(chat_state_key(session_id), "state")
        if raw is not None:
            try:
                state = ChatState.model_validate_json(raw)
            except ValidationError:
                log.warning("discarding an unreadable chat state for session %s", session_id)
            else:
                if state.owner != owner:  # the same answer as for an id never made
                    raise NotFoundError("chat session", session_id)
                return state
        notes.append("I don't remember an earlier conversation here, so we're starting fresh.")
        # Never the client's id: a session id is only ever one the server made.
        return ChatState(session_id=uuid.uuid4(), owner=owner)

    def _save(self, state: ChatState) -> None:
        key = chat_state_key(state.session_id)
        self.cache.set(key, "state", state.model_dump_json(), self.state_ttl_seconds)

    def _shopper(self, state: ChatState, user_id: uuid.UUID | None) -> Shopper | None:
        if user_id is not None and state.user_id is not None and user_id != state.user_id:
            raise InvalidInputError(
                "this chat session belongs to another shopper; start a new session"
            )
        wanted = user_id or state.user_id
        if wanted is None:
            return None
        shopper = self.shoppers.lookup(wanted)
        if shopper is None:
            raise NotFoundError("user", wanted)
        return shopper

    def _feedback(
        self, state: ChatState, feedback: ChatFeedback, snapshot: CatalogSnapshot
    ) -> tuple[ChatState, str]:
        i = snapshot.index.get(feedback.product_id)
        if i is None:
            raise InvalidInputError(f"product {feedback.product_id} does not exist")
        name = snapshot.products[i].name
        pid = feedback.product_id
        if feedback.action == "like":
            new = state.remember(liked=pid, event=GuestEvent(product_id=pid, action="wishlist"))
            return new, f"Saved the {name} to your likes; I'll show more like it."
        if feedback.action == "not_interested":
            return state.remember(disliked=pid), f"Got it, I won't show the {name} again."
        action: Literal["view", "add_to_cart"] = feedback.action
        ack = f"Added the {name} to your cart." if action == "add_to_cart" else None
        return state.remember(event=GuestEvent(product_id=pid, action=action)), ack or ""

    def _profile(
        self, state: ChatState, shopper: Shopper | None, snapshot: CatalogSnapshot
    ) -> UserProfile | None:
        """The stored history of a known shopper plus this conversation's feedback; a guest's
        profile is the conversation's feedback alone."""
        now = self.clock()
        records = list(shopper.interactions) if shopper else []
        records += [
            InteractionRecord(action=e.action, created_at=now, product_id=e.product_id)
            for e in state.events
        ]
        if not records:
            return None
        return weighted_profile(records, snapshot, now=now, half_life_days=self.half_life_days)

    def _products(
        self, snapshot: CatalogSnapshot, filters: ChatFilters, retrieved: Retrieved
    ) -> list[ChatProduct]:
        out: list[ChatProduct] = []
        filter_context = filters.model_dump(mode="json")
        for position, hit in enumerate(retrieved.items, start=1):
            p = snapshot.products[hit.index]
            reason = self.prompts.render(
                "chat_reason.j2",
                name=p.name,
                category=p.category,
                price=f"{p.price:.2f}",
                in_stock=p.quantity > 0,
                evidence=hit.evidence.model_dump(mode="json"),
                filters=filter_context,
            )
            out.append(
                ChatProduct(
                    position=position,
                    id=p.id,
                    name=p.name,
                    category=p.category,
                    price=p.price,
                    image_url=p.image_url,
                    in_stock=p.quantity > 0,
                    quantity=p.quantity,
                    tags=list(p.tags),
                    score=hit.score,
                    reason=reason,
                    evidence=hit.evidence,
                )
            )
        return out
