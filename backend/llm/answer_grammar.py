"""The grammar one answer is written under, for servers that enforce JSON mode's schema by
grammar (llama.cpp). OpenAI's strict ``json_schema`` refuses these keywords and keeps the
general ``ANSWER_SCHEMA``; the evidence check runs on every answer either way.

Two grammars (``LLM_GRAMMAR`` chooses; ``auto``, the default, asks first under ``shape`` and
writes the retry after a failed check under ``facts``, and goes to ``facts`` at once for a
model whose own words keep failing: ``GrammarChoice``):

- ``shape``: this request's products in the prompt's order, each once; each reason citing
  only its own facts (the request's are the intro's); lengths bounded. What the check would
  reject as ``missing_product``, ``unknown_product``, ``duplicate_product`` or an unknown
  fact id cannot be written; the wording is the model's.
- ``facts``: the shape, and each reason made of its product's facts as clauses, verbatim
  (``Fact.clause``: "you viewed the Trail Tent 2 months ago", "it costs $23.49"): one or
  two, joined by "and", a comma or a full stop, after an optional reviewed lead ("A great
  pick:"); the intro a greeting, the shopper's name and optionally a reviewed line ("Here
  are 5 picks for you."). Leads and lines live with the reviewed style words
  (``check/style.py``). The model chooses which facts, in what order, and how they are
  introduced; no word of it is its own. A small local model (135M parameters here)
  restates another product's facts and invents numbers when it writes freely; under this
  grammar it cannot, and the check still reads every answer. Fact ids are left out: the
  check judges an answer that cites none against all of its product's facts, and the ids
  cost a small model tokens.

Why not a freer grammar. Tried with the same model: every word the check accepts, in any
order, passed the check with word salad ("Ridgeback Back to the Ridgeback 2 months ago"),
since the check backs words, not their order; style words before the facts gave "Welcome
because to make it's,". Whole clauses and reviewed phrases keep each sentence readable.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Any, Literal

from backend.llm.check import ANSWER_SCHEMA_NAME, answer_schema
from backend.llm.check.style import INTRO_LINES, LEADS
from backend.llm.client import ResponseSchema
from backend.llm.facts import Fact, FactSheet, ProductFacts
from backend.text import NUMBER_WORDS

GrammarLevel = Literal["shape", "facts"]
GrammarSetting = Literal["auto", "shape", "facts"]

ANSWER_SCHEMA = ResponseSchema(ANSWER_SCHEMA_NAME, answer_schema())
REASON_WORDS = 30  # the word budget per reason the prompt asks for
CHARS_PER_WORD = 8  # a reason's length bound in the grammar: generous for English words
INTRO_CHARS = 160
MAX_CITED = 4  # fact ids one reason may cite in the shape grammar: more is never needed
GREETINGS = ("Hi", "Hello", "Hey", "Welcome back")
_JOIN = "(, and | and |; |[.] )"
# Characters a clause may hold as they are, and those written as a class (regex syntax in
# both Python's and llama.cpp's reading); a clause with any other special character is not
# offered (a product name with quotes or brackets: the shape grammar still lets it be said).
_AS_CLASS = frozenset(".$()+*?|{}")
_UNSAFE = frozenset('"\\[]^')


class GrammarChoice:
    """Which grammar each attempt is asked under. ``shape`` and ``facts`` are fixed. ``auto``
    asks first in the model's own words (``shape``) and writes the retry after a failed check
    under ``facts``; once the model's own words have failed the check on almost every recent
    answer (under ``MIN_PASS_RATE`` of the last ``WINDOW``), it asks under ``facts`` at once,
    saving a small model an answer that would be thrown away, and every ``EXPLORE_EVERY``-th
    first answer is still asked in its own words, so a model that does better is noticed.
    Per process, shared by the threads that write explanations."""

    WINDOW = 20
    MIN_PASS_RATE = 0.1
    EXPLORE_EVERY = 10

    def __init__(self, setting: GrammarSetting = "auto") -> None:
        self.setting = setting
        self._lock = threading.Lock()
        self._own_words: deque[bool] = deque(maxlen=self.WINDOW)  # passed, per shape answer
        self._firsts = 0

    def level(self, attempt: int) -> GrammarLevel:
        if self.setting != "auto":
            return self.setting
        if attempt > 1:
            return "facts"
        with self._lock:
            self._firsts += 1
            if self._own_words_fail() and self._firsts % self.EXPLORE_EVERY:
                return "facts"
            return "shape"

    def record(self, level: GrammarLevel, passed: bool) -> None:
        if level == "shape":
            with self._lock:
                self._own_words.append(passed)

    def _own_words_fail(self) -> bool:
        seen = self._own_words
        return len(seen) >= self.WINDOW // 2 and sum(seen) < self.MIN_PASS_RATE * len(seen)


def answer_schema_for(
    sheet: FactSheet,
    *,
    level: GrammarLevel = "shape",
    shopper: str = "",
    words: int = REASON_WORDS,
) -> ResponseSchema:
    """``ANSWER_SCHEMA`` plus this request's grammar at ``level`` (see the module doc)."""
    request_ids = [fact.id for fact in sheet.request]

    def reason(facts: tuple[Fact, ...]) -> dict[str, object]:
        if level == "facts":
            offered = (f.clause or f.text for f in facts if f.reason)
            clauses = [c for c in map(_regex_clause, offered) if c]
            if clauses:
                return clauses_pattern(clauses, words * CHARS_PER_WORD)
        return {"type": "string", "minLength": 1, "maxLength": words * CHARS_PER_WORD}

    def cited(ids: list[str]) -> dict[str, object]:
        if not ids:
            return {"const": []}  # llama.cpp reads maxItems 0 without items as any array
        return {"type": "array", "items": {"enum": ids}, "maxItems": min(MAX_CITED, len(ids))}

    def reason_object(p: ProductFacts) -> dict[str, object]:
        properties: dict[str, object] = {"product_id": {"const": p.ref}, "reason": reason(p.facts)}
        if level == "shape":
            properties["fact_ids"] = cited([fact.id for fact in p.facts])
        return {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }

    reasons = [reason_object(p) for p in sheet.products]
    properties: dict[str, object] = {
        "intro": {"type": "string", "minLength": 1, "maxLength": INTRO_CHARS},
        "intro_fact_ids": cited(request_ids),
    }
    if level == "facts":
        properties = {"intro": intro_pattern(shopper, len(sheet.products))}
    properties["reasons"] = {
        "type": "array",
        "prefixItems": reasons,
        "minItems": len(reasons),
        "maxItems": len(reasons),
    }
    grammar = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return ResponseSchema(ANSWER_SCHEMA.name, ANSWER_SCHEMA.schema, grammar=grammar)


def clauses_pattern(clauses: list[str], max_chars: int) -> dict[str, Any]:
    """A string of an optional reviewed lead, then one of the given clause regexes, or two
    different ones joined, then a full stop or "!". Written in the regex subset llama.cpp
    compiles (groups, alternation, classes, bounded repetition; no ``(?:``, no ``\\.``)."""
    unique = sorted(set(clauses))
    if len(unique) == 1:
        said = _one_of(unique)
    else:  # each clause, then optionally a different one: a fact is never said twice
        said = _one_of(f"{c}({_JOIN}{_one_of(o for o in unique if o != c)})?" for c in unique)
    lead = f"({_one_of(_regex_word(w) for w in LEADS)}(, |: ))?"
    pattern = f"^{lead}{said}[.!]$"
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": pattern}


def intro_pattern(shopper: str, count: int) -> dict[str, Any]:
    """ "Hi Amara!", then optionally a reviewed line ("Here are 5 picks for you."), the
    count said as a number or a word."""
    greeting = _one_of(_regex_word(g) for g in GREETINGS)
    # The name exactly as the shop has it ("amara Ibrahim" was written when either case of
    # its first letter was allowed).
    name = _literal(shopper) or "there"
    counts = [str(count), *(w for w, n in NUMBER_WORDS.items() if n == count)]
    lines = {_regex_word(line.replace("{count}", n)) for line in INTRO_LINES for n in counts}
    pattern = f"^{greeting} {name}[!,.]( {_one_of(lines)})?$"
    return {"type": "string", "minLength": 1, "maxLength": INTRO_CHARS, "pattern": pattern}


def _one_of(regexes: Iterable[str]) -> str:
    return "(" + "|".join(sorted(set(regexes))) + ")"


def _regex_word(word: str) -> str:
    """``word`` matching with its first letter in either case."""
    head, rest = word[:1], word[1:]
    if head.lower() != head.upper():
        return f"[{head.upper()}{head.lower()}]{_escaped(rest)}"
    return _escaped(word)


def _regex_clause(text: str) -> str:
    """A clause as a regex for itself, its first letter in either case (it may open a
    sentence); "" when no pattern may carry it."""
    return _regex_word(text) if _carried(text) else ""


def _literal(text: str) -> str:
    """``text`` as a regex for exactly itself; "" when no pattern may carry it."""
    return _escaped(text) if _carried(text) else ""


def _carried(text: str) -> bool:
    """Whether a pattern may carry ``text``: not empty, no character of ``_UNSAFE``."""
    return bool(text) and not _UNSAFE & set(text)


def _escaped(text: str) -> str:
    return "".join(f"[{ch}]" if ch in _AS_CLASS else ch for ch in text)
