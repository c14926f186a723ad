"""What ``POST /chat`` takes and answers."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.chat.state import ChatFilters, FilterField
from backend.recommender.evidence import Evidence
from backend.security.text import SafeMultilineText, SafeText

MAX_MESSAGE_CHARS = 4000  # hard limit (422); the parser reads the first 500 characters


class FilterRemoval(BaseModel):
    """Remove one understood filter (a chip): a whole field, or one value of a list field."""

    model_config = ConfigDict(extra="forbid")

    field: FilterField
    value: SafeText | None = Field(default=None, min_length=1, max_length=100)


class ChatFeedback(BaseModel):
    """A card button. ``like`` and ``not_interested`` are remembered by the conversation
    (a disliked product is never shown again in it); the UI also sends ``POST /events`` for
    a known shopper, so their stored profile learns too."""

    model_config = ConfigDict(extra="forbid")

    product_id: uuid.UUID
    action: Literal["like", "not_interested", "view", "add_to_cart"]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: uuid.UUID | None = Field(
        default=None,
        description="Continue a conversation with the id the server returned; omit to start "
        "one. An unknown or expired id starts a new session (use the id in the answer); "
        "another caller's session is a 404.",
    )
    user_id: uuid.UUID | None = Field(
        default=None, description="A known shopper; omit for a guest."
    )
    message: SafeMultilineText = Field(default="", max_length=MAX_MESSAGE_CHARS)
    remove_filter: FilterRemoval | None = None
    feedback: ChatFeedback | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> ChatRequest:
        if not self.message.strip() and self.remove_filter is None and self.feedback is None:
            raise ValueError("message must not be empty (or send remove_filter / feedback)")
        return self


class ChatProduct(BaseModel):
    position: int = Field(ge=1)
    id: uuid.UUID
    name: str
    category: str
    price: Decimal
    image_url: str | None
    in_stock: bool
    quantity: int
    tags: list[str]
    score: float
    reason: str
    evidence: Evidence


class FilterChip(BaseModel):
    """One understood filter, as the UI shows it; send ``field``/``value`` to remove it."""

    field: FilterField
    value: str | None = None
    label: str


class ChatResponse(BaseModel):
    session_id: uuid.UUID
    user_id: uuid.UUID | None
    reply: str
    reply_source: Literal["template", "llm"] = Field(
        default="template",
        description="llm: written by the LLM and passed the evidence check; else the template",
    )
    reply_fallback_reason: str | None = Field(
        default=None,
        description="Why the template answered although an LLM is configured (no_items, "
        "check_failed:<reason>, bad_json, timeout, …); null otherwise",
    )
    parser: Literal["rules", "llm"] = "rules"
    products: list[ChatProduct]
    filters: ChatFilters
    chips: list[FilterChip]
    suggestions: list[str]
    notes: list[str]
    turn: int
    page: int = Field(default=1, description="1, then 2, 3… for each 'show me more'")
    has_more: bool = Field(
        default=False, description="More products match than have been shown: ask 'show more'"
    )
