"""LLM understanding of a shopper's message, validated against the catalog.

The LLM fills the same structure the rule parser produces through a forced function call
(``FILTER_TOOL``, whose parameters are ``LLM_SCHEMA``); a server without tool calls gets JSON
mode, and the system prompt carries the schema for it. Whatever it says is checked: unknown
categories, tags, colours and brands, negative prices and references to products that were
not shown are dropped and said so.
Any failure (LLM down, circuit open, not JSON, wrong shape) falls back to the rule parser,
and a message that tries to give the assistant orders never reaches the LLM at all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, get_args

from pydantic import ConfigDict, Field, ValidationError

from backend.chat.parser import INJECTION, MessageParser, clean
from backend.chat.state import (
    CATEGORY_FILTER,
    MAX_QUERY_WORDS,
    VALUE_FILTERS,
    FilterChanges,
    FilterField,
    FilterUpdate,
)
from backend.chat.vocabulary import ChatVocabulary, Kind
from backend.llm.client import ChatMessage, Completion, LLMError, Tool
from backend.llm.prompts import PromptLibrary

log = logging.getLogger(__name__)

MAX_TAGS_IN_PROMPT = 400


class CompletionClient(Protocol):
    """The part of ``backend.llm.client.LLMClient`` this parser uses."""

    def complete(
        self, messages: Sequence[ChatMessage], *, json_mode: bool = False, tool: Tool | None = None
    ) -> Completion: ...


class LLMFilters(FilterChanges):
    """The JSON the LLM must return (its schema is rendered into the prompt). Categories and
    words come as the LLM naturally names them; ``validate`` turns them into an update."""

    model_config = ConfigDict(extra="ignore")

    categories: list[str] = Field(default_factory=list)
    add_to_categories: bool = False
    clear: list[str] = Field(default_factory=list)
    query: str = ""


LLM_SCHEMA: dict[str, Any] = LLMFilters.model_json_schema()
FILTER_TOOL = Tool(
    name="set_filters",
    description="Record what the shopper asked for, as structured shopping filters.",
    parameters=LLM_SCHEMA,
)
_CLEARABLE: frozenset[str] = frozenset(get_args(FilterField))


class LLMParser:
    """``MessageParser`` backed by an LLM; ``last_source`` says which parser answered."""

    def __init__(
        self, client: CompletionClient, prompts: PromptLibrary, fallback: MessageParser
    ) -> None:
        self.client = client
        self.prompts = prompts
        self.fallback = fallback
        self.last_source: Literal["llm", "rules"] = "rules"

    def parse(self, message: str, vocabulary: ChatVocabulary, *, shown_count: int) -> FilterUpdate:
        self.last_source = "rules"
        notes: list[str] = []
        text = clean(message, notes)
        if INJECTION.search(text):
            return self.fallback.parse(message, vocabulary, shown_count=shown_count)
        messages = [
            ChatMessage(
                "system",
                self.prompts.render(
                    "chat_parse_system.j2",
                    schema=json.dumps(LLM_SCHEMA["properties"], separators=(",", ":")),
                    categories=vocabulary.categories,
                    colours=sorted(vocabulary.colours),
                    tags=sorted(vocabulary.tags)[:MAX_TAGS_IN_PROMPT],
                    brands=sorted(vocabulary.brands.values()),
                ),
            ),
            ChatMessage(
                "user",
                self.prompts.render("chat_parse_user.j2", message=text, shown_count=shown_count),
            ),
        ]
        try:
            completion = self.client.complete(messages, json_mode=True, tool=FILTER_TOOL)
            data = json.loads(completion.text)
            notes.extend(_drop_negative_prices(data))
            answer = LLMFilters.model_validate(data)
        except (LLMError, ValueError, ValidationError) as exc:
            log.info("LLM parse failed (%s); using the rule parser", type(exc).__name__)
            return self.fallback.parse(message, vocabulary, shown_count=shown_count)
        self.last_source = "llm"
        update = validate(answer, vocabulary, shown_count=shown_count)
        update.notes = list(dict.fromkeys([*notes, *update.notes]))
        return update


def _drop_negative_prices(data: object) -> list[str]:
    """A negative price is a misunderstanding worth saying, not a reason to distrust the rest
    of the answer (which the schema's minimum would otherwise reject whole)."""
    if not isinstance(data, dict):
        return []
    prices = [k for k in ("min_price", "max_price") if isinstance(data.get(k), int | float)]
    negative = [k for k in prices if data[k] < 0]
    for k in negative:
        data[k] = None
    return ["Prices can't be negative, so I ignored that price."] if negative else []


def validate(answer: LLMFilters, vocabulary: ChatVocabulary, *, shown_count: int) -> FilterUpdate:
    """Keep only what the catalog knows; say what was dropped."""
    notes: list[str] = []

    def known(values: list[str], table: Mapping[str, str], what: str) -> list[str]:
        out = []
        for value in values:
            hit = table.get(value.strip().lower())
            if hit is None:
                notes.append(f"This shop has no {what} “{value[:40]}”, so I left it out.")
            else:
                out.append(hit)
        return list(dict.fromkeys(out))

    def position(value: int | None) -> int | None:
        if value is None:
            return None
        if not 1 <= value <= shown_count:
            notes.append(f"I can't find product number {value} among the ones I showed.")
            return None
        return value

    tables: dict[Kind, Mapping[str, str]] = {
        "category": {c.lower(): c for c in vocabulary.categories},
        "tag": {t: t for t in vocabulary.tags},
        "colour": {c: c for c in vocabulary.colours},
        "brand": vocabulary.brands,
    }
    picked = known(answer.categories, tables["category"], CATEGORY_FILTER.noun)
    changes = answer.model_dump(include=set(FilterChanges.model_fields))
    for kind in VALUE_FILTERS:
        if kind is not CATEGORY_FILTER:
            changes[kind.wanted] = known(getattr(answer, kind.wanted), tables[kind.kind], kind.noun)
        changes[kind.excluded] = known(getattr(answer, kind.excluded), tables[kind.kind], kind.noun)
    changes["cheaper_than_position"] = position(answer.cheaper_than_position)
    changes["similar_to_position"] = position(answer.similar_to_position)
    update = FilterUpdate(
        **changes,
        set_categories=picked if picked and not answer.add_to_categories else None,
        add_categories=picked if answer.add_to_categories else [],
        clear=[c for c in answer.clear if c in _CLEARABLE],
        query_words=[w for w in answer.query.lower().split() if len(w) <= 30][:MAX_QUERY_WORDS],
    )
    lo, hi = update.min_price, update.max_price
    if lo is not None and hi is not None and lo > hi:
        update.min_price, update.max_price = hi, lo
    update.notes = list(dict.fromkeys(notes))
    return update
