"""Rule-based understanding of a shopper's message: text in, a ``FilterUpdate`` out.

The parser works offline and is the fallback of the LLM parser. It reads, in order: resets,
references to shown products ("more like the second one", "cheaper than #1"), price phrases,
relative price and stock words, then catalog terms (categories and their synonyms, tags,
colours, brands) with negation ("not red", "no Voltix"). Words it does not understand go
into the semantic query. It can only ever produce a ``FilterUpdate``, whatever the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from backend.chat.state import (
    FILTER_OF_KIND,
    MAX_QUERY_WORDS,
    FilterField,
    FilterUpdate,
    ValueLists,
)
from backend.chat.vocabulary import MAX_PHRASE, ChatVocabulary, Term
from backend.text import WORD

MAX_PARSE_CHARS = 500
MAX_WORD_CHARS = 30


class MessageParser(Protocol):
    def parse(
        self, message: str, vocabulary: ChatVocabulary, *, shown_count: int
    ) -> FilterUpdate: ...


# --- input hygiene ----------------------------------------------------------------------

_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_MARKUP = re.compile(r"<[^>]{0,300}>|\[/?[a-zA-Z][^\]]{0,50}\]|`{3}|&[a-z]{2,6};")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028-\u202e\ufeff]")
INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+)*"
    r"(?:previous\s+|prior\s+|above\s+|earlier\s+|system\s+)?(?:instructions?|prompts?|rules?)"
    r"|\bsystem\s+prompt\b|\byou\s+are\s+now\b|\bact\s+as\b|\bpretend\s+(?:to\s+be|you)\b"
    r"|\bjailbreak\b|\bdeveloper\s+mode\b|\breveal\s+(?:your|the)\s+\w+"
    r"|\b(?:drop|delete|truncate)\s+table\b|\bset\s+(?:the\s+)?price\s+to\b",
    re.I,
)

# --- phrases ----------------------------------------------------------------------------

_RESET = re.compile(
    r"\b(?:start(?:ing)?\s+(?:over|again|fresh|from\s+scratch)|reset|clear\s+(?:all|everything|"
    r"the\s+filters|filters|it\s+all)|new\s+search|from\s+scratch|forget\s+(?:it|everything|all"
    r"\s+that|all\s+of\s+that))\b"
)
_CLEARS: list[tuple[re.Pattern[str], tuple[FilterField, ...]]] = [
    (
        re.compile(
            r"\b(?:any|whatever|no)\s+(?:price|budget)(?:\s+limit)?\b|\b(?:forget|ignore|drop|"
            r"remove|never\s*mind)\s+(?:about\s+)?(?:the\s+)?(?:price|budget)(?:\s+limit)?\b|"
            r"\bprice\s+(?:doesn'?t|does\s+not)\s+matter\b"
        ),
        ("price", "sort"),
    ),
    (
        re.compile(
            r"\b(?:any|whatever|all)\s+colou?rs?\b|\b(?:forget|drop|remove|ignore)\s+(?:the\s+)?"
            r"colou?rs?\b|\bcolou?r\s+(?:doesn'?t|does\s+not)\s+matter\b"
        ),
        ("colours", "exclude_colours"),
    ),
    (
        re.compile(r"\b(?:any|whatever|all)\s+brands?\b|\b(?:forget|drop|remove)\s+the\s+brands?"),
        ("brands", "exclude_brands"),
    ),
    (
        re.compile(
            r"\b(?:any|all|every)\s+categor(?:y|ies)\b|\b(?:forget|drop|remove)\s+the\s+categor"
            r"(?:y|ies)\b|\banything\s+at\s+all\b"
        ),
        ("categories", "exclude_categories"),
    ),
    (
        re.compile(r"\b(?:out\s+of\s+stock\s+is\s+fine|include\s+(?:out\s+of\s+stock|sold\s+out))"),
        ("in_stock",),
    ),
]

_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "eighth": 8, "8th": 8,
    "ninth": 9, "9th": 9, "tenth": 10, "10th": 10, "last": -1, "one": 1, "two": 2, "three": 3,
    "four": 4, "five": 5,
}  # fmt: skip
_POSITION = (
    r"(?:#\s*(?P<num>\d{1,2})|(?:number|no\.|item|product|option)\s*#?\s*(?P<num2>\d{1,2})"
    r"|(?P<word>first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|"
    r"1st|2nd|3rd|[4-9]th|10th)(?:\s+(?:one|item|product|option))?)"
)
_SIMILAR = re.compile(
    r"\b(?:more|something|anything|others?|ones?|items?|products?|stuff|things?)?\s*"
    r"(?:like|similar\s+to|alternatives?\s+to|along\s+the\s+lines\s+of|such\s+as)\s+"
    r"(?:the\s+|that\s+|this\s+)?" + _POSITION
)
_CHEAPER_THAN = re.compile(
    r"\b(?:cheaper|less\s+expensive|lower[-\s]priced?)\s+than\s+(?:the\s+|that\s+)?" + _POSITION
)

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d{1,7}(?:[.,]\d{1,2})?"
_CURRENCY_WORD = r"dollars?|usd|bucks|euros?|eur|pounds?|gbp|quid"
_AMOUNT = rf"(?:[$€£]\s*)?(?:{_NUMBER})(?:\s*k\b)?(?:\s*(?:{_CURRENCY_WORD})\b|\s*[$€£])?"
_MONEY = (
    rf"(?:[$€£]\s*(?:{_NUMBER})(?:\s*k\b)?"
    rf"|(?:{_NUMBER})(?:\s*k\b)?\s*(?:(?:{_CURRENCY_WORD})\b|[$€£]))"
)
_RANGE = re.compile(
    rf"\b(?:between|from)\s+(?P<a>{_AMOUNT})\s+(?:and|to|-|–)\s+(?P<b>{_AMOUNT})"
    rf"|(?P<c>{_MONEY})\s*(?:-|–|to)\s*(?P<d>{_AMOUNT})"
    rf"|(?P<e>{_AMOUNT})\s*(?:-|–|to)\s*(?P<f>{_MONEY})"
)
_MAX = re.compile(
    r"(?:\b(?:under|below|beneath|less\s+than|cheaper\s+than|lower\s+than|max(?:imum)?|up\s+to|"
    r"at\s+most|no\s+more\s+than|not\s+more\s+than|within|budget\s+(?:of|is)|not\s+over)|<=?|≤)"
    rf"\s*(?:of\s+|a\s+)?(?P<a>{_AMOUNT})"
)
_MAX_AFTER = re.compile(
    rf"(?P<a>{_AMOUNT})\s*(?:max(?:imum)?|or\s+less|or\s+cheaper|tops|at\s+most|at\s+the\s+most)\b"
)
_MIN = re.compile(
    r"(?:\b(?:over|above|more\s+than|at\s+least|min(?:imum)?|starting\s+at|from|pricier\s+than|"
    rf"more\s+expensive\s+than)|>=?|≥)\s*(?P<a>{_AMOUNT})"
)
_AROUND = re.compile(
    rf"(?:\b(?:around|about|approximately|approx\.?|roughly|close\s+to|near|ca\.?)|~)\s*"
    rf"(?P<a>{_AMOUNT})|(?:\bfor\s+)?(?P<b>{_MONEY})"
)
_NEGATIVE_PRICE = re.compile(
    r"(?:under|below|over|above|less\s+than|more\s+than|between|from|around|price)\s*"
    r"(?:of\s+)?[$€£]?\s*-\s*\d"
)
_RELATIVE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:cheapest|lowest\s+price[sd]?|least\s+expensive)\b"), "sort:price_asc"),
    (re.compile(r"\b(?:most\s+expensive|priciest|highest\s+price[sd]?)\b"), "sort:price_desc"),
    (
        re.compile(
            r"\b(?:cheaper|less\s+expensive|lower[-\s]priced?|more\s+affordable|too\s+expensive|"
            r"too\s+pricey|too\s+much|lower\s+prices?|less\s+money)\b"
        ),
        "cheaper",
    ),
    (
        re.compile(
            r"\b(?:pricier|more\s+expensive|higher[-\s]end\s+ones|more\s+premium|fancier|"
            r"better\s+quality|nicer\s+ones)\b"
        ),
        "pricier",
    ),
    (
        re.compile(r"\b(?:cheap|budget|affordable|inexpensive|low[-\s]cost|bargains?)\b"),
        "sort:price_asc",
    ),
    (
        re.compile(r"\b(?:premium|luxury|luxurious|high[-\s]end|top[-\s]end|splurge)\b"),
        "sort:price_desc",
    ),
    (
        re.compile(
            r"\b(?:in\s+stock|available\s+(?:now|today)|ships?\s+(?:now|today)|not\s+sold\s+out|"
            r"available)\b"
        ),
        "in_stock",
    ),
]
# Asking for the next results. Runs after prices, references and relative words, so "more
# like #2", "more than $50", "more expensive" and "no more than" are already taken.
_MORE = re.compile(
    r"\b(?:show|see|give|get|load)\s+(?:me\s+|us\s+)?(?:some\s+|a\s+few\s+|any\s+)?more\b"
    r"|^\W*(?:some\s+|any\s+)?more\W*(?:please|pls)?\W*$|\bmore\s+(?:options|results|choices|"
    r"ideas|picks|suggestions|products|items|of\s+(?:these|those|them))\b|\bnext\s+(?:page|ones?|"
    r"few|results?|batch|options)\b|^\W*next\W*(?:please|pls)?\W*$|\b(?:other|different)\s+"
    r"(?:options|ones|choices|products|items|results|picks)\b|\bwhat\s+else\b|\banything\s+"
    r"else\b|\bsomething\s+else\b|\bkeep\s+going\b|\bany\s+others\b|\bothers\b"
)
_ADDITIVE = re.compile(r"\b(?:also|too|as\s+well|plus|in\s+addition|and\s+some)\b")

_TOKEN = re.compile(rf"{WORD.pattern}|[,.;!?|]")
_NEGATORS = frozenset(
    "no not without except excluding exclude avoid hate hates dislike don't dont never nothing "
    "non skip minus nope neither nor isn't aren't doesn't".split()
)
_BOUNDARIES = frozenset("but instead rather only just however though".split())
STOPWORDS = frozenset(
    """
    a an the and or of for to in on at by with from into about as is are was were be been being
    i me my mine myself we our you your yours he she him her his it its they them their this
    that these those there here what which who whom whose when where why how all any some
    each every both few many much more most other others another such same so than too very
    can could would should will shall may might must do does did doing have has had having
    show shows showing give find finding search searching get getting got want wanted wants
    need needs needed looking look looks seeking see let lets let's please pls plz thanks
    thank thx ok okay yes yeah yep hi hello hey hiya good great nice cool awesome perfect
    something anything stuff thing things item items product products one ones kind kinds
    type types sort sorts like likes love would'd i'd i'm im i've ive it's its that's whats
    what's buy buying purchase shopping shop store recommend recommendation recommendations
    suggest suggestion suggestions options option choice choices alternative alternatives
    price prices priced cost costs costing budget money dollars dollar usd euros euro eur
    pounds pound gbp bucks quid cheap under below over above around between less least
    also again now today maybe perhaps just only really actually still even well then
    instead rather bit little lot lots some please new newer newest latest best better
    top popular nice good great show's tell me us go ahead else available stock first
    filter filters
    """.split()
)
# Common words of other languages: a hint to say we read English best (not a translator).
FOREIGN_HINTS = frozenset(
    "por favor para con una uno los las el ich und der die das ein eine bitte mit für pour "
    "avec les une des je veux merci gracias quiero busco voglio cerco sono pas".split()
)
_INJECTION_NOTE = (
    "I can only help you find products in this shop, so I ignored the instructions in your message."
)


@dataclass
class _Scan:
    """Terms found in the free text, split by polarity."""

    positive: list[Term] = field(default_factory=list)
    negative: list[Term] = field(default_factory=list)
    unknown_negated: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)


class RuleParser:
    """Deterministic, offline, fast (well under a millisecond for a typical message)."""

    def parse(self, message: str, vocabulary: ChatVocabulary, *, shown_count: int) -> FilterUpdate:
        notes: list[str] = []
        text = clean(message, notes)
        update = FilterUpdate()

        suspicious = bool(INJECTION.search(text))
        if suspicious:
            notes.append(_INJECTION_NOTE)
            text = INJECTION.sub(" ; ", text)

        text, found = _take(_RESET, text)
        if found:
            update.reset = True

        clears: list[FilterField] = []
        for pattern, fields in _CLEARS:
            text, hit = _take(pattern, text)
            if hit:
                clears.extend(fields)
        update.clear = list(dict.fromkeys(clears))

        text, similar = _take(_SIMILAR, text)
        if similar:
            update.similar_to_position = _position(similar[-1], shown_count, notes)
        text, cheaper_than = _take(_CHEAPER_THAN, text)
        if cheaper_than:
            update.cheaper_than_position = _position(cheaper_than[-1], shown_count, notes)

        text = self._prices(text, update, notes)
        text = self._relative(text, update)
        text, more = _take(_MORE, text)
        update.more = bool(more)

        additive = bool(_ADDITIVE.search(text))
        scan = _scan(text, vocabulary)
        self._apply_terms(scan, update, additive)
        for word in scan.unknown_negated:
            notes.append(
                f"I don't know a brand or product called “{word}” in this shop, "
                "so there was nothing to leave out."
            )
        # Free words from a message that tried to give orders are not trusted as a query.
        update.query_words = [] if suspicious else scan.words[:MAX_QUERY_WORDS]
        foreign = any(not w.isascii() or w in FOREIGN_HINTS for w in scan.words)
        if foreign and not scan.positive and not scan.negative:
            notes.append(
                "I understand English best; I searched for your words as they are. "
                "Try e.g. “red sneakers under $80”."
            )
        update.notes = list(dict.fromkeys(notes))
        return update

    # -- prices ------------------------------------------------------------------------

    def _prices(self, text: str, update: FilterUpdate, notes: list[str]) -> str:
        if _NEGATIVE_PRICE.search(text):
            notes.append("Prices can't be negative, so I ignored that price.")
            text = _NEGATIVE_PRICE.sub(" ; ", text)
        lo: float | None = None
        hi: float | None = None
        for m in _RANGE.finditer(text):
            a = m.group("a") or m.group("c") or m.group("e")
            b = m.group("b") or m.group("d") or m.group("f")
            lo, hi = _amount(a, notes), _amount(b, notes)
        text = _RANGE.sub(" ; ", text)
        for m in _MAX.finditer(text):
            hi = _amount(m.group("a"), notes)
        text = _MAX.sub(" ; ", text)
        for m in _MAX_AFTER.finditer(text):
            hi = _amount(m.group("a"), notes)
        text = _MAX_AFTER.sub(" ; ", text)
        for m in _MIN.finditer(text):
            lo = _amount(m.group("a"), notes)
        text = _MIN.sub(" ; ", text)
        for m in _AROUND.finditer(text):
            centre = _amount(m.group("a") or m.group("b"), notes)
            lo, hi = round(centre * 0.8, 2), round(centre * 1.2, 2)
        text = _AROUND.sub(" ; ", text)
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
            notes.append("The lower price was above the upper one, so I swapped them.")
        update.min_price, update.max_price = lo, hi
        return text

    def _relative(self, text: str, update: FilterUpdate) -> str:
        explicit = update.min_price is not None or update.max_price is not None
        for pattern, meaning in _RELATIVE:
            text, hit = _take(pattern, text)
            if not hit:
                continue
            if meaning == "cheaper" and not explicit:
                update.cheaper = True
            elif meaning == "pricier" and not explicit:
                update.pricier = True
            elif meaning == "in_stock":
                update.in_stock = True
            elif meaning.startswith("sort:") and update.sort is None:
                update.sort = "price_asc" if meaning.endswith("asc") else "price_desc"
        return text

    # -- catalog terms -------------------------------------------------------------------

    @staticmethod
    def _apply_terms(scan: _Scan, update: FilterUpdate, additive: bool) -> None:
        categories: list[str] = []
        for term in scan.positive:
            if term.kind == "category":
                categories.append(term.value)
                if term.also_tag:
                    update.include_tags.append(term.also_tag)
            else:
                getattr(update, FILTER_OF_KIND[term.kind].wanted).append(term.value)
        for term in scan.negative:
            if term.kind == "category" and term.also_tag:
                # "no shoes" means no footwear, not no clothing at all.
                update.exclude_tags.append(term.also_tag)
            else:
                getattr(update, FILTER_OF_KIND[term.kind].excluded).append(term.value)
        categories = list(dict.fromkeys(categories))
        if categories:
            if additive:
                update.add_categories = categories
            else:
                update.set_categories = categories
        for name in ValueLists.model_fields:
            setattr(update, name, list(dict.fromkeys(getattr(update, name))))


def clean(message: str, notes: list[str]) -> str:
    """Strip markup and control characters, truncate, lowercase."""
    text = _CONTROL.sub(" ", message)
    stripped = _MARKUP.sub(" ", _SCRIPT.sub(" ", text))
    if stripped != text:
        notes.append("I ignored the markup in your message.")
    if len(stripped) > MAX_PARSE_CHARS:
        notes.append(
            f"Your message was long, so I read only the first {MAX_PARSE_CHARS} characters."
        )
        stripped = stripped[:MAX_PARSE_CHARS]
    return " ".join(stripped.lower().replace("’", "'").split())


def _take(pattern: re.Pattern[str], text: str) -> tuple[str, list[re.Match[str]]]:
    matches = list(pattern.finditer(text))
    if not matches:
        return text, []
    return pattern.sub(" ; ", text), matches


def _position(match: re.Match[str], shown_count: int, notes: list[str]) -> int | None:
    raw = match.group("num") or match.group("num2")
    n = int(raw) if raw else _ORDINALS.get(match.group("word") or "", 0)
    if n == -1:
        n = shown_count
    if n < 1 or n > shown_count:
        notes.append(
            "I haven't shown you any products yet, so I can't tell which one you mean."
            if shown_count == 0
            else f"I only showed {shown_count} product{'s' if shown_count != 1 else ''}, "
            f"so I can't find number {n}."
        )
        return None
    return n


def _amount(text: str, notes: list[str]) -> float:
    lowered = text.lower()
    if re.search(r"€|£|euro|eur\b|pound|gbp|quid", lowered):
        notes.append("Prices here are in US dollars; I used your amount as dollars.")
    number = re.search(_NUMBER, lowered)
    if number is None:
        return 0.0
    raw = number.group(0)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?", raw):
        value = float(raw.replace(",", ""))  # "1,000"
    else:
        value = float(raw.replace(",", "."))  # "19,99": a decimal comma
    if re.search(r"\d\s*k\b", lowered):
        value *= 1000
    return round(value, 2)


def _scan(text: str, vocabulary: ChatVocabulary) -> _Scan:
    scan = _Scan()
    tokens = _TOKEN.findall(text)
    negating = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ",.;!?|" or token in _BOUNDARIES:
            negating = False
            i += 1
            continue
        term, width = _longest(tokens, i, vocabulary)
        if term is None and token in _NEGATORS:
            negating = True
            i += 1
            continue
        if term is not None:
            (scan.negative if negating else scan.positive).append(term)
            i += width
            continue
        word = token.strip("'-")
        content = word and word not in STOPWORDS and not word.replace(".", "").isdigit()
        if content and len(word) <= MAX_WORD_CHARS:
            if negating:
                if not scan.unknown_negated:
                    scan.unknown_negated.append(word)
            elif word not in scan.words:
                scan.words.append(word)
        i += 1
    return scan


def _longest(tokens: list[str], start: int, vocabulary: ChatVocabulary) -> tuple[Term | None, int]:
    for width in range(MAX_PHRASE, 0, -1):
        words = tokens[start : start + width]
        if len(words) < width or any(w in ",.;!?|" for w in words):
            continue
        term = vocabulary.lookup(words)
        if term is not None:
            return term, width
    return None, 1
