"""The evidence check: an LLM answer ships only if every claim in it is backed by the evidence.

The LLM is asked for ``{"intro": str, "reasons": [{"product_id": str, "reason": str}]}``. The
check parses that and verifies, per reason, against that product's record and evidence only:

- structure: valid JSON, the right shape, every recommended product exactly once, no other;
- names: no catalog product is named unless it is the product itself or in its evidence
  (``because_of``), detected by matching word n-grams against every catalog name;
- numbers: every price, number and percentage appears in the record or evidence;
- words: every checkable category, attribute/tag, colour and marketing-claim word (the
  ``CheckVocabulary``) appears in the record or evidence; "bought/viewed X" matches the action;
- leaks: no echo of the system prompt and no prompt scaffolding (ids, ``evidence:``, braces);
- length limits.

It is deliberately conservative: a false alarm costs a template explanation, a miss costs the
shopper's trust. What it cannot see (a claim made only with words outside the vocabulary) is
named in the tests. Pure functions over plain data: the chat replies reuse it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal, Protocol

from backend.recommender.catalog import CatalogSnapshot, ProductRecord
from backend.recommender.evidence import Evidence

PhraseKind = Literal["product", "category", "attribute", "claim"]
Phrase = tuple[str, ...]

NOT_JSON = "not_json"
BAD_SHAPE = "bad_shape"
TOO_LONG = "too_long"
EMPTY_REASON = "empty_reason"
UNKNOWN_PRODUCT = "unknown_product"
DUPLICATE_PRODUCT = "duplicate_product"
MISSING_PRODUCT = "missing_product"
UNSUPPORTED_PRODUCT = "unsupported_product"
UNSUPPORTED_PRICE = "unsupported_price"
UNSUPPORTED_NUMBER = "unsupported_number"
UNSUPPORTED_CATEGORY = "unsupported_category"
UNSUPPORTED_ATTRIBUTE = "unsupported_attribute"
UNSUPPORTED_CLAIM = "unsupported_claim"
UNSUPPORTED_NAME = "unsupported_name"
WRONG_ACTION = "wrong_action"
PROMPT_ECHO = "prompt_echo"
PROMPT_LEAK = "prompt_leak"

_KIND_CODE: dict[PhraseKind, str] = {
    "product": UNSUPPORTED_PRODUCT,
    "category": UNSUPPORTED_CATEGORY,
    "attribute": UNSUPPORTED_ATTRIBUTE,
    "claim": UNSUPPORTED_CLAIM,
}
_KIND_RANK: dict[PhraseKind, int] = {"product": 0, "category": 1, "attribute": 2, "claim": 3}

COLOUR_WORDS = frozenset(
    "black white grey gray silver gold golden red blue navy green olive yellow orange pink "
    "purple violet brown beige cream ivory tan teal turquoise charcoal maroon burgundy "
    "coral lavender mint khaki rose copper bronze multicolour multicolor".split()
)

# Marketing and product claims a model likes to add; never in our evidence unless the
# record itself says so (a description mentioning "waterproof" makes that word allowed).
CLAIM_PHRASES = frozenset(
    {
        "sale",
        "on sale",
        "discount",
        "discounted",
        "deal",
        "bargain",
        "cheapest",
        "free shipping",
        "free delivery",
        "free returns",
        "for free",
        "free gift",
        "bestseller",
        "bestselling",
        "best seller",
        "best selling",
        "top seller",
        "award",
        "award winning",
        "top rated",
        "highly rated",
        "five star",
        "5 star",
        "reviews",
        "reviewers",
        "customers love",
        "trending",
        "viral",
        "new arrival",
        "brand new",
        "exclusive",
        "limited edition",
        "limited time",
        "only left",
        "sold out",
        "last chance",
        "back in stock",
        "in stock",
        "out of stock",
        "guarantee",
        "guaranteed",
        "warranty",
        "certified",
        "clinically",
        "proven",
        "handmade",
        "eco friendly",
        "sustainable",
        "gluten free",
        "hypoallergenic",
        "water resistant",
        "noise cancelling",
        "noise canceling",
        "bluetooth",
        "cordless",
        "leather",
        "cotton",
        "bamboo",
        "stainless steel",
        "dishwasher safe",
        "foldable",
        "adjustable",
        "refurbished",
        "popular",
        "popularity",
        "most popular",
        "most viewed",
    }
)

# Category names that are also everyday words are checked only when capitalised mid-text.
AMBIGUOUS_CATEGORY_WORDS = frozenset({"home", "office", "health", "beauty", "garden"})

_NUMBER_WORDS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000,
    "dozen": 12, "half": 0.5,
}  # fmt: skip

_ACTION_WORDS: dict[str, frozenset[str]] = {
    "purchase": frozenset({"bought", "purchased", "ordered"}),
    "add_to_cart": frozenset({"cart", "basket"}),
    "wishlist": frozenset({"wishlist", "wishlisted", "saved"}),
    "view": frozenset({"viewed", "browsed", "clicked"}),
}
_ACTION_MATCHES = {
    "purchase": {"purchase"},
    "add_to_cart": {"add_to_cart", "remove_from_cart"},
    "wishlist": {"wishlist"},
    "view": {"view", "click"},
}

_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(
    r"(?P<cur>[$€£]\s?)?(?<![\w.])(?P<num>\d[\d,]*(?:\.\d+)?)"
    r"(?P<pct>\s?(?:%|percent\b))?(?P<unit>\s?(?:dollars?|usd|euros?|eur|bucks)\b)?",
    re.IGNORECASE,
)
_LEAKS = re.compile(
    r"product_id|\bevidence\s*:|matched_(?:tags|categories)|because_of|popularity_rank"
    r"|interaction_count|\bP\d{1,2}\b|[{}\[\]<>]|```|system prompt"
    r"|\b(?:my|these|above|following) (?:instructions|rules)\b"
    r"|as an ai\b|language model"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+")
_POSSESSIVE = re.compile(r"['’]s\b", re.IGNORECASE)
# A run of capitalised words: how a product or brand name shows up in running text.
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:&\s+)?[A-Z0-9][\w'’-]*)*")
_SENTENCE_START = frozenset(".!?:;\"'“‘(-–—\n")
_ALWAYS_ALLOWED_NAMES = frozenset({("i",), ("shopwise",)})
_ECHO_N = 6


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words; ``and``/``&`` dropped so "Toys & Games" matches."""
    return [_stem(w) for w in _WORD.findall(_POSSESSIVE.sub("", text).lower()) if w != "and"]


def _ngrams(words: Sequence[str], max_n: int) -> set[Phrase]:
    out: set[Phrase] = set()
    for n in range(1, max_n + 1):
        for i in range(len(words) - n + 1):
            out.add(tuple(words[i : i + n]))
    return out


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "")).normalize()
    except InvalidOperation:
        return None


def _number_facts(text: str) -> tuple[set[Decimal], set[Decimal], set[Decimal]]:
    """Numbers a text states: all of them, those said as prices, those said as percentages."""
    numbers: set[Decimal] = set()
    prices: set[Decimal] = set()
    percents: set[Decimal] = set()
    for m in _NUMBER.finditer(text):
        value = _decimal(m.group("num"))
        if value is None:
            continue
        numbers.add(value)
        if m.group("cur") or m.group("unit"):
            prices.add(value)
        if m.group("pct"):
            percents.add(value)
    for word in _WORD.findall(text.lower()):
        number = _NUMBER_WORDS.get(word)
        if number is not None:
            numbers.add(Decimal(str(number)).normalize())
    return numbers, prices, percents


@dataclass(frozen=True)
class CheckVocabulary:
    """Phrases the check can recognise in free text, with what kind of claim each one is."""

    phrases: Mapping[Phrase, PhraseKind]
    max_len: int
    # The longest phrase starting with each word: most words start none, so most are skipped.
    starts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        products: Iterable[ProductRecord],
        *,
        colours: Iterable[str] = COLOUR_WORDS,
        claims: Iterable[str] = CLAIM_PHRASES,
        extra_attributes: Iterable[str] = (),
    ) -> CheckVocabulary:
        phrases: dict[Phrase, PhraseKind] = {}

        def add(text: str, kind: PhraseKind) -> None:
            phrase = tuple(tokens(text))
            if not phrase:
                return
            current = phrases.get(phrase)
            if current is None or _KIND_RANK[kind] < _KIND_RANK[current]:
                phrases[phrase] = kind

        categories: set[str] = set()
        tags: set[str] = set()
        for product in products:
            add(product.name, "product")
            categories.add(product.category)
            tags.update(product.tags)
        for category in categories:  # a few distinct values, repeated on every product
            add(category, "category")
        for tag in tags:
            add(tag, "attribute")
        for word in colours:
            add(word, "attribute")
        for word in extra_attributes:
            add(word, "attribute")
        for phrase in claims:
            add(phrase, "claim")
        starts: dict[str, int] = {}
        for known in phrases:
            starts[known[0]] = max(starts.get(known[0], 0), len(known))
        return cls(
            phrases=phrases, max_len=max((len(p) for p in phrases), default=1), starts=starts
        )


class CheckItem(Protocol):
    """A recommended product and its evidence (``ExplainedItem`` has this shape)."""

    @property
    def product(self) -> ProductRecord: ...

    @property
    def evidence(self) -> Evidence: ...


def item_ref(position: int) -> str:
    """The short id the prompt gives the item at ``position``: cheaper than a UUID in tokens."""
    return f"P{position + 1}"


@dataclass(frozen=True, slots=True)
class CheckLimits:
    max_reason_words: int = 40
    max_reason_chars: int = 320
    max_intro_words: int = 40
    max_intro_chars: int = 300
    max_answer_chars: int = 6000


@dataclass(frozen=True, slots=True)
class CheckProblem:
    code: str
    detail: str
    product_id: str | None = None


@dataclass(frozen=True, slots=True)
class CheckedReason:
    item: CheckItem
    reason: str


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    """Only ``check_answer`` builds one, and only when every check passed."""

    intro: str
    reasons: tuple[CheckedReason, ...]


@dataclass(frozen=True, slots=True)
class CheckResult:
    problems: tuple[CheckProblem, ...]
    answer: CheckedAnswer | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.answer is not None

    @property
    def reasons(self) -> tuple[str, ...]:
        """Distinct problem codes, in the order found."""
        return tuple(dict.fromkeys(p.code for p in self.problems))

    def describe(self, limit: int = 6) -> list[str]:
        return [p.detail for p in self.problems[:limit]]


@dataclass
class _Allowed:
    """What one piece of text may mention: phrases (n-grams of the sources) and numbers."""

    phrases: set[Phrase] = field(default_factory=set)
    numbers: set[Decimal] = field(default_factory=set)
    prices: set[Decimal] = field(default_factory=set)  # a "$" or "dollars" number must be one
    percents: set[Decimal] = field(default_factory=set)
    past: dict[Phrase, str] = field(default_factory=dict)  # a past product's name → action

    def add_text(self, text: str, max_len: int) -> None:
        phrases, numbers, prices, percents = _text_facts(text, max_len)
        self.phrases |= phrases
        self.numbers |= numbers
        self.prices |= prices
        self.percents |= percents

    def merge(self, other: _Allowed) -> None:
        self.phrases |= other.phrases
        self.numbers |= other.numbers
        self.prices |= other.prices
        self.percents |= other.percents
        self.past.update(other.past)


@lru_cache(maxsize=16_384)
def _text_facts(
    text: str, max_len: int
) -> tuple[frozenset[Phrase], frozenset[Decimal], frozenset[Decimal], frozenset[Decimal]]:
    """Phrases and numbers of one source text. Names, tags and details repeat across
    requests, so this is cached: the check's cost is then mostly set unions in C."""
    numbers, prices, percents = _number_facts(text)
    return (
        frozenset(_ngrams(tokens(text), max_len)),
        frozenset(numbers),
        frozenset(prices),
        frozenset(percents),
    )


@lru_cache(maxsize=4096)
def _record_facts(product: ProductRecord, max_len: int) -> _Allowed:
    """What a product record supports; records are immutable, so this is cached (copy it)."""
    facts = _Allowed()
    for text in [product.name, product.category, product.description, *product.tags]:
        facts.add_text(text, max_len)
    facts.add_text("in stock" if product.quantity > 0 else "out of stock", max_len)
    price = Decimal(product.price)
    prices = {price.normalize(), price.quantize(Decimal("0.01")).normalize()}
    facts.numbers |= prices
    facts.prices |= prices
    return facts


def _allowed_for(item: CheckItem, max_len: int) -> _Allowed:
    product, evidence = item.product, item.evidence
    allowed = _Allowed()
    allowed.merge(_record_facts(product, max_len))
    texts = [m.name for m in evidence.matched_categories]
    texts += [m.name for m in evidence.matched_tags]
    texts += [p.product_name for p in evidence.because_of]
    texts += [s.detail for s in evidence.sources] + [s.name for s in evidence.sources]
    segment, nearby = evidence.segment, evidence.nearby
    if (
        evidence.popularity_rank <= 10
        or any(s.name == "popularity" for s in evidence.sources)
        or segment is not None  # popular with the shoppers of its segment
    ):
        texts.append("popular popularity most popular most viewed")
    if segment is not None:
        texts += [segment.label, "shoppers like you"]
        allowed.numbers |= {Decimal(segment.shoppers), Decimal(segment.size)}
    if nearby is not None:
        texts.append("near you nearby")
        allowed.numbers |= {
            Decimal(str(nearby.distance_km)).normalize(),
            Decimal(str(nearby.radius_km)).normalize(),
        }
    for text in texts:
        allowed.add_text(text, max_len)
    allowed.numbers |= {
        Decimal(evidence.popularity_rank),
        Decimal(evidence.interaction_count),
        Decimal(str(evidence.score)).normalize(),
    }
    for match in [*evidence.matched_categories, *evidence.matched_tags]:
        allowed.numbers.add(Decimal(str(match.weight)).normalize())
    for source in evidence.sources:
        allowed.percents.add(Decimal(str(round(source.share * 100))).normalize())
    for past in evidence.because_of:
        allowed.past[tuple(tokens(past.product_name))] = past.action
    return allowed


@lru_cache(maxsize=32)
def _echo_grams(prompt: str) -> frozenset[Phrase]:
    words = _WORD.findall(prompt.lower())
    return frozenset(tuple(words[i : i + _ECHO_N]) for i in range(len(words) - _ECHO_N + 1))


class _Checker:
    def __init__(
        self,
        vocabulary: CheckVocabulary,
        limits: CheckLimits,
        system_prompts: Sequence[str],
    ) -> None:
        self.vocabulary = vocabulary
        self.limits = limits
        self.echo = frozenset().union(*(_echo_grams(p) for p in system_prompts))
        self.problems: list[CheckProblem] = []

    def flag(self, code: str, detail: str, product_id: str | None = None) -> None:
        self.problems.append(CheckProblem(code=code, detail=detail, product_id=product_id))

    def text(self, text: str, allowed: _Allowed, where: str, pid: str | None) -> None:
        """Every checkable claim in ``text`` must be in ``allowed``."""
        self._leaks(text, where, pid)
        self._numbers(text, allowed, where, pid)
        self._phrases(text, allowed, where, pid)
        self._names(text, allowed, where, pid)
        self._actions(text, allowed, where, pid)

    def _leaks(self, text: str, where: str, pid: str | None) -> None:
        leak = _LEAKS.search(text)
        if leak:
            self.flag(PROMPT_LEAK, f"{where} contains prompt scaffolding {leak.group(0)!r}", pid)
        if self.echo:
            words = _WORD.findall(text.lower())
            for i in range(len(words) - _ECHO_N + 1):
                if tuple(words[i : i + _ECHO_N]) in self.echo:
                    self.flag(PROMPT_ECHO, f"{where} repeats the instructions", pid)
                    break

    def _numbers(self, text: str, allowed: _Allowed, where: str, pid: str | None) -> None:
        for m in _NUMBER.finditer(text):
            value = _decimal(m.group("num"))
            is_price, is_percent = bool(m.group("cur") or m.group("unit")), bool(m.group("pct"))
            known = (
                allowed.prices if is_price else allowed.percents if is_percent else allowed.numbers
            )
            if value is None or value in known:
                continue
            if is_price:
                self.flag(
                    UNSUPPORTED_PRICE,
                    f"{where} states the price {m.group(0).strip()!r}, "
                    "which is not the product's price",
                    pid,
                )
            elif is_percent:
                self.flag(
                    UNSUPPORTED_NUMBER,
                    f"{where} states {m.group(0).strip()!r}, "
                    "a percentage that is not in the evidence",
                    pid,
                )
            else:
                self.flag(
                    UNSUPPORTED_NUMBER,
                    f"{where} states the number {m.group(0).strip()!r}, "
                    "which is not in the evidence",
                    pid,
                )
        for word in _WORD.findall(text.lower()):
            number = _NUMBER_WORDS.get(word)
            if number is not None and Decimal(str(number)).normalize() not in allowed.numbers:
                self.flag(
                    UNSUPPORTED_NUMBER,
                    f"{where} states {word!r}, a number that is not in the evidence",
                    pid,
                )

    def _names(self, text: str, allowed: _Allowed, where: str, pid: str | None) -> None:
        """Capitalised names the allowed sources do not contain: invented products or brands."""
        for match in _CAPITALISED.finditer(text):
            words = match.group(0).split()
            before = text[: match.start()].rstrip()
            if not before or before[-1] in _SENTENCE_START:
                words = words[1:]  # a capital at a sentence start says nothing
            phrase = tuple(tokens(" ".join(words)))
            if (
                not phrase
                or all(w.isdigit() for w in phrase)  # judged by _numbers
                or phrase in allowed.phrases
                or phrase in self.vocabulary.phrases  # judged by kind in _phrases
                or phrase in _ALWAYS_ALLOWED_NAMES
            ):
                continue
            if all((w,) in allowed.phrases or (w,) in self.vocabulary.phrases for w in phrase):
                continue  # every word is a known fact or vocabulary word ("Audio Wireless")
            self.flag(
                UNSUPPORTED_NAME,
                f"{where} names {' '.join(words)!r}, which is not in this product's record "
                "or evidence",
                pid,
            )

    def _phrases(self, text: str, allowed: _Allowed, where: str, pid: str | None) -> None:
        text = _POSSESSIVE.sub("", text)
        raw = [(m.group(0), m.start()) for m in _WORD.finditer(text.lower())]
        originals = [text[start : start + len(w)] for w, start in raw]
        words = [_stem(w) for w, _ in raw]
        keep = [i for i, w in enumerate(words) if w != "and"]
        words = [words[i] for i in keep]
        originals = [originals[i] for i in keep]
        phrases, starts = self.vocabulary.phrases, self.vocabulary.starts
        i = 0
        while i < len(words):
            longest = starts.get(words[i], 0)
            for n in range(min(longest, len(words) - i), 0, -1):  # longest match first
                phrase = tuple(words[i : i + n])
                kind = phrases.get(phrase)
                if kind is None:
                    continue
                if (
                    kind == "category"
                    and n == 1
                    and phrase[0] in AMBIGUOUS_CATEGORY_WORDS
                    and not originals[i][:1].isupper()
                ):
                    continue  # "at home" is not a claim about the Home category
                if phrase not in allowed.phrases:
                    said = " ".join(originals[i : i + n])
                    self.flag(
                        _KIND_CODE[kind],
                        f"{where} mentions {said!r}, "
                        f"a {kind} that is not in this product's record or evidence",
                        pid,
                    )
                i += n - 1
                break
            i += 1

    def _actions(self, text: str, allowed: _Allowed, where: str, pid: str | None) -> None:
        if not allowed.past:
            return
        for sentence in _SENTENCE.split(text):
            words = tokens(sentence)
            grams = _ngrams(words, max((len(p) for p in allowed.past), default=1))
            named = [action for name, action in allowed.past.items() if name in grams]
            if not named:
                continue
            raw = set(_WORD.findall(sentence.lower()))
            for group, verbs in _ACTION_WORDS.items():
                if raw & verbs and not any(a in _ACTION_MATCHES[group] for a in named):
                    self.flag(
                        WRONG_ACTION,
                        f"{where} says the shopper {sorted(raw & verbs)[0]} a product they did not",
                        pid,
                    )


def _parse(text: str) -> object:
    body = text.strip()
    if body.startswith("```"):  # a fenced block: models add these even in JSON mode
        body = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", body)
    return json.loads(body)


def check_answer(
    text: str,
    items: Sequence[CheckItem],
    vocabulary: CheckVocabulary,
    *,
    user_name: str = "",
    summary: str = "",
    system_prompts: Sequence[str] = (),
    limits: CheckLimits | None = None,
    partial: bool = False,
) -> CheckResult:
    """Verify an LLM answer against the recommended items; pass/fail with machine reasons.

    ``system_prompts`` are the instructions the model saw; repeating them is a leak.
    ``summary`` (the user's behaviour line) may back claims in the intro, never in reasons.
    ``partial``: the answer so far, while it streams: items without a reason yet are not a
    problem, and the checked answer holds the reasons there are, in the items' order.
    """
    limits = limits or CheckLimits()
    checker = _Checker(vocabulary, limits, system_prompts)
    if len(text) > limits.max_answer_chars:
        checker.flag(TOO_LONG, f"the answer is {len(text)} characters long")
        return CheckResult(tuple(checker.problems))
    try:
        data = _parse(text)
    except (ValueError, RecursionError):
        return CheckResult((CheckProblem(NOT_JSON, "the answer is not valid JSON"),))
    intro = data.get("intro") if isinstance(data, dict) else None
    reasons = data.get("reasons") if isinstance(data, dict) else None
    if (
        not isinstance(intro, str)
        or not isinstance(reasons, list)
        or not all(
            isinstance(r, dict)
            and isinstance(r.get("product_id"), str | int)
            and isinstance(r.get("reason"), str)
            for r in reasons
        )
    ):
        return CheckResult(
            (
                CheckProblem(
                    BAD_SHAPE,
                    'the answer must be {"intro": "...", '
                    '"reasons": [{"product_id": "...", "reason": "..."}]}',
                ),
            )
        )

    refs: dict[str, int] = {}
    for i, item in enumerate(items):
        refs[item_ref(i).lower()] = i
        refs[str(i + 1)] = i
        refs[str(item.product.id).lower()] = i
    allowed = [_allowed_for(item, vocabulary.max_len) for item in items]
    user_grams = _ngrams(tokens(user_name), vocabulary.max_len)  # addressing the shopper
    for a in allowed:
        a.phrases |= user_grams

    found: dict[int, str] = {}
    for entry in reasons:
        ref = str(entry["product_id"]).strip().lower()
        reason = str(entry["reason"]).strip()
        i_or_none = refs.get(ref)
        if i_or_none is None:
            checker.flag(
                UNKNOWN_PRODUCT,
                f"product_id {entry['product_id']!r} is not one of the recommended products",
            )
            continue
        i = i_or_none
        item = items[i]
        pid, name = str(item.product.id), item.product.name
        if i in found:
            checker.flag(DUPLICATE_PRODUCT, f"{name} has more than one reason", pid)
            continue
        found[i] = reason
        where = f"the reason for {name}"
        if not reason:
            checker.flag(EMPTY_REASON, f"{where} is empty", pid)
            continue
        if len(reason) > limits.max_reason_chars or len(reason.split()) > limits.max_reason_words:
            checker.flag(TOO_LONG, f"{where} is longer than {limits.max_reason_words} words", pid)
        checker.text(reason, allowed[i], where, pid)
    for i, item in enumerate(items):
        if i not in found and not partial:
            checker.flag(
                MISSING_PRODUCT,
                f"{item.product.name} ({item_ref(i)}) has no reason",
                str(item.product.id),
            )

    intro = intro.strip()
    if len(intro) > limits.max_intro_chars or len(intro.split()) > limits.max_intro_words:
        checker.flag(TOO_LONG, f"the intro is longer than {limits.max_intro_words} words")
    everything = _Allowed()
    for a in allowed:
        everything.merge(a)
    for text_ in (user_name, summary):
        everything.add_text(text_, vocabulary.max_len)
    everything.numbers.add(Decimal(len(items)))
    checker.text(intro, everything, "the intro", None)

    if checker.problems:
        return CheckResult(tuple(checker.problems))
    checked = tuple(
        CheckedReason(item=items[i], reason=found[i]) for i in range(len(items)) if i in found
    )
    return CheckResult(problems=(), answer=CheckedAnswer(intro=intro, reasons=checked))


class VocabularyCache:
    """The vocabulary of the catalog snapshot in use, rebuilt only when the snapshot changes."""

    def __init__(self, snapshot: Callable[[], CatalogSnapshot]) -> None:
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._built_for: CatalogSnapshot | None = None
        self._vocabulary = CheckVocabulary.build(())

    def __call__(self) -> CheckVocabulary:
        snapshot = self._snapshot()
        with self._lock:
            if snapshot is not self._built_for:
                self._vocabulary = CheckVocabulary.build(snapshot.products)
                self._built_for = snapshot
            return self._vocabulary
