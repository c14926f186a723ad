"""The whitelist check of one piece of text (a reason or the intro).

Every word must be backed: by a fact the text cites (its words and the words it licenses),
by the product's own record (name, category, tags, description), by the shopper's name, or
by the reviewed style vocabulary. Every number must appear in a cited fact or the record's
name or description. A catalog product may be named only when the product itself or a cited
fact names it, and a past product only with the action the shopper really took. Anything
else fails, and the problem quotes the unsupported words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from backend.llm.check.result import (
    PROMPT_ECHO,
    PROMPT_LEAK,
    UNSUPPORTED_CLAIM,
    UNSUPPORTED_NUMBER,
    UNSUPPORTED_PRICE,
    UNSUPPORTED_PRODUCT,
    WRONG_ACTION,
)
from backend.llm.check.style import INTRO_STEMS, STYLE_PHRASES, STYLE_STEMS
from backend.llm.check.vocabulary import CheckVocabulary, Phrase, phrase
from backend.llm.facts import ACTION_GROUP, Fact, numbers_in
from backend.recommender.snapshot import ProductRecord
from backend.text import NUMBER, WORD, stem, stems, words

Flag = Callable[[str, str, str | None, str | None], None]  # code, detail, product, span

# A token: a number (with its currency or percent sign) or a word.
_TOKEN = re.compile(
    rf"(?P<cur>[$€£]\s?)?(?P<num>{NUMBER.pattern}(?![^\W_]))(?P<pct>\s?%)?"
    rf"|(?P<word>{WORD.pattern})"
)
_CURRENCY_AFTER = frozenset({"dollar", "dollars", "usd", "euro", "euros", "eur", "buck", "bucks"})
_LEAKS = re.compile(
    r"product_id|fact_ids|\bevidence\s*:|matched_(?:tags|categories)|because_of"
    r"|popularity_rank|interaction_count|\b[PFU]\d{1,3}\b|[{}\[\]<>]|```|system prompt"
    r"|\b(?:my|these|above|following) (?:instructions|rules)\b"
    r"|as an ai\b|language model"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")
_ECHO_N = 6
# How a reason says what the shopper did, as written (past forms only: "add it" is advice).
_SAID_ACTION = {
    **dict.fromkeys("bought purchased ordered owned".split(), "purchase"),
    **dict.fromkeys("viewed looked browsed checked eyed eyeing explored clicked".split(), "view"),
    **dict.fromkeys("added cart basket".split(), "cart"),
    **dict.fromkeys("wishlisted wishlist saved bookmarked".split(), "wishlist"),
}


@dataclass
class Allowed:
    """What one piece of text may say."""

    stems: set[str] = field(default_factory=set)
    numbers: set[Decimal] = field(default_factory=set)
    prices: set[Decimal] = field(default_factory=set)  # what "$" or "dollars" may go with
    names: set[Phrase] = field(default_factory=set)
    past: dict[Phrase, set[str]] = field(default_factory=dict)  # past name → action groups
    texts: list[Phrase] = field(default_factory=list)  # cited facts, as stems (names in them)

    def add_fact(self, fact: Fact) -> None:
        self.stems |= fact.allowed_stems
        self.numbers |= fact.numbers
        if fact.kind == "price":
            self.prices |= fact.numbers
        self.texts.append(phrase(fact.text))
        for name, action in fact.names:
            key = phrase(name)
            self.names.add(key)
            groups = self.past.setdefault(key, set())
            if action is not None and action in ACTION_GROUP:
                groups.add(ACTION_GROUP[action])

    def add_record(self, product: ProductRecord) -> None:
        stems_, numbers, name = record_allowed(product)
        self.stems |= stems_
        self.numbers |= numbers
        self.names.add(name)

    def add_text(self, text: str) -> None:
        self.stems |= text_stems(text)


@lru_cache(maxsize=4096)
def record_allowed(product: ProductRecord) -> tuple[frozenset[str], frozenset[Decimal], Phrase]:
    """A record's own words: name, category, tags, description (never its price or stock,
    which are facts a reason must cite)."""
    texts = [product.name, product.category, product.description, *product.tags]
    stems_ = frozenset().union(*(text_stems(t) for t in texts))
    numbers = frozenset(numbers_in(f"{product.name} {product.description}"))
    return stems_, numbers, phrase(product.name)


@lru_cache(maxsize=16_384)
def text_stems(text: str) -> frozenset[str]:
    return frozenset(stems(text))


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "")).normalize()
    except InvalidOperation:
        return None


@lru_cache(maxsize=32)
def echo_grams(prompt: str) -> frozenset[tuple[str, ...]]:
    ws = words(prompt)
    return frozenset(tuple(ws[i : i + _ECHO_N]) for i in range(len(ws) - _ECHO_N + 1))


@dataclass
class _Token:
    text: str
    start: int
    end: int
    stem: str = ""
    parts: tuple[str, ...] = ()
    number: Decimal | None = None
    price: bool = False
    ok: bool = False


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    for m in _TOKEN.finditer(text):
        if m.group("num") is not None:
            out.append(
                _Token(
                    m.group(0),
                    m.start(),
                    m.end(),
                    number=_decimal(m.group("num")),
                    price=bool(m.group("cur")),
                )  # fmt: skip
            )
            continue
        word = m.group("word").lower().replace("’", "'")
        if word == "and" or word in ("&",):
            out.append(_Token(m.group(0), m.start(), m.end(), stem="and", ok=True))
            continue
        parts = tuple(stem(p) for p in word.split("-")) if "-" in word else ()
        token = _Token(m.group(0), m.start(), m.end(), stem=stem(word), parts=parts)
        if out and out[-1].number is not None and word in _CURRENCY_AFTER:
            out[-1].price = True
        out.append(token)
    return out


class TextCheck:
    """Checks pieces of one answer; ``flag`` collects the problems."""

    def __init__(
        self, vocabulary: CheckVocabulary, system_prompts: Sequence[str], flag: Flag
    ) -> None:
        self.vocabulary = vocabulary
        self.echo = frozenset().union(*(echo_grams(p) for p in system_prompts))
        self.flag = flag

    def check(
        self, text: str, allowed: Allowed, where: str, pid: str | None, *, intro: bool = False
    ) -> None:
        if self._leaks(text, where, pid):
            return
        tokens = _tokens(text)
        _style_phrases(tokens)
        self._names(tokens, text, allowed, where, pid)
        self._numbers(tokens, allowed, where, pid)
        self._words(tokens, text, allowed, where, pid, INTRO_STEMS if intro else STYLE_STEMS)
        self._actions(text, allowed, where, pid)

    def _leaks(self, text: str, where: str, pid: str | None) -> bool:
        leak = _LEAKS.search(text)
        if leak:
            self.flag(
                PROMPT_LEAK, f"{where} contains prompt scaffolding {leak.group(0)!r}", pid,
                leak.group(0),
            )  # fmt: skip
            return True
        if self.echo:
            ws = words(text)
            for i in range(len(ws) - _ECHO_N + 1):
                if tuple(ws[i : i + _ECHO_N]) in self.echo:
                    self.flag(PROMPT_ECHO, f"{where} repeats the instructions", pid,
                              " ".join(ws[i : i + _ECHO_N]))  # fmt: skip
                    return True
        return False

    def _names(
        self, tokens: list[_Token], text: str, allowed: Allowed, where: str, pid: str | None
    ) -> None:
        """Catalog product names: allowed ones make their words fine, others fail."""
        words = [(i, t) for i, t in enumerate(tokens) if t.number is None and t.stem != "and"]
        names, starts = self.vocabulary.names, self.vocabulary.starts
        k = 0
        while k < len(words):
            longest = starts.get(words[k][1].stem, 0)
            matched = 0
            for n in range(min(longest, len(words) - k), 0, -1):
                key = tuple(t.stem for _, t in words[k : k + n])
                if key not in names:
                    continue
                if n == 1 and not words[k][1].text[:1].isupper():
                    continue  # a one-word name in lower case is an ordinary word
                first, last = words[k][1], words[k + n - 1][1]
                span = text[first.start : last.end]
                if key in allowed.names or any(_contains(t, key) for t in allowed.texts):
                    for _, t in words[k : k + n]:
                        t.ok = True
                elif all(t.stem in allowed.stems for _, t in words[k : k + n]) and n == 1:
                    pass  # a one-word name that is also a word of its own facts
                else:
                    self.flag(
                        UNSUPPORTED_PRODUCT,
                        f"{where} names {span!r}, a product its cited facts do not mention",
                        pid, span,
                    )  # fmt: skip
                    for _, t in words[k : k + n]:
                        t.ok = True  # reported once, as a product
                matched = n
                break
            k += max(matched, 1)

    def _numbers(self, tokens: list[_Token], allowed: Allowed, where: str, pid: str | None) -> None:
        for t in tokens:
            if t.number is None:
                continue
            if t.number is not None and t.number in (
                allowed.prices if t.price else allowed.numbers
            ):
                t.ok = True
                continue
            t.ok = True  # reported here, not again as a word
            if t.price:
                self.flag(UNSUPPORTED_PRICE,
                          f"{where} states the price {t.text.strip()!r}, which no cited fact gives",
                          pid, t.text.strip())  # fmt: skip
            else:
                self.flag(UNSUPPORTED_NUMBER,
                          f"{where} states {t.text.strip()!r}, a number no cited fact gives",
                          pid, t.text.strip())  # fmt: skip

    def _words(
        self,
        tokens: list[_Token],
        text: str,
        allowed: Allowed,
        where: str,
        pid: str | None,
        style: frozenset[str],
    ) -> None:
        def backed(t: _Token) -> bool:
            if t.ok or t.stem in style or t.stem in allowed.stems:
                return True
            return bool(t.parts) and all(p in allowed.stems or p in style for p in t.parts)

        run: list[_Token] = []
        for t in [*tokens, None]:
            if t is not None and not backed(t):
                run.append(t)
                continue
            if run:
                span = text[run[0].start : run[-1].end]
                self.flag(
                    UNSUPPORTED_CLAIM,
                    f"{where} says {span!r}, which neither its cited facts nor the product's "
                    "record support",
                    pid, span,
                )  # fmt: skip
                run = []

    def _actions(self, text: str, allowed: Allowed, where: str, pid: str | None) -> None:
        """A past product named with an action the shopper did not take."""
        if not any(allowed.past.values()):
            return
        for sentence in _SENTENCE.split(text):
            key = phrase(sentence)
            named = [
                groups for name, groups in allowed.past.items() if groups and _contains(key, name)
            ]
            if not named:
                continue
            in_names = {w for name in allowed.past for w in name}  # "Storage Basket" is no action
            said = {
                _SAID_ACTION[w]: w
                for w in re.findall(r"[a-z]+", sentence.lower())
                if w in _SAID_ACTION and stem(w) not in in_names
            }
            for group, word in said.items():
                if not any(group in groups for groups in named):
                    self.flag(
                        WRONG_ACTION,
                        f"{where} says the shopper {word} a product they did not",
                        pid, word,
                    )  # fmt: skip


_PHRASE_LENGTHS = sorted({len(p) for p in STYLE_PHRASES}, reverse=True)


def _style_phrases(tokens: list[_Token]) -> None:
    """Mark the words of reviewed style phrases ("your next favourite") as backed."""
    stems_ = [t.stem for t in tokens]
    for n in _PHRASE_LENGTHS:
        for i in range(len(tokens) - n + 1):
            if tuple(stems_[i : i + n]) in STYLE_PHRASES:
                for t in tokens[i : i + n]:
                    t.ok = True


def _contains(words: Sequence[str], name: Phrase) -> bool:
    n = len(name)
    return any(tuple(words[i : i + n]) == name for i in range(len(words) - n + 1))


def allowed_for(
    facts: Iterable[Fact], products: Iterable[ProductRecord], extra: Iterable[str] = ()
) -> Allowed:
    allowed = Allowed()
    for product in products:
        allowed.add_record(product)
    for fact in facts:
        allowed.add_fact(fact)
    for text in extra:
        allowed.add_text(text)
    return allowed
