"""One definition of words, shared by the chat parser and the evidence check.

The chat parser reads what a shopper typed and the check reads what an LLM wrote against
the catalog's facts; if they split, stem or recognise colours differently, a word the parser
understands can be one the check rejects (or the other way round). So both take their
tokeniser, singular/stem rules, slug and colour list from here.
"""

from __future__ import annotations

import re
from functools import lru_cache

# A word: letters or digits, with inner apostrophes or hyphens ("it's", "t-shirt").
WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
# A number as written in running text: "1,299.00", "59.99", "4.8", "20".
NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_POSSESSIVE = re.compile(r"['’]s\b")

# Colour tags the catalog uses, and everyday words for them.
COLOURS = frozenset(
    "black white grey silver navy blue red green pink beige brown yellow purple orange coral "
    "nude gold".split()
)
COLOUR_ALIASES = {"gray": "grey", "golden": "gold", "violet": "purple", "cream": "beige"}

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000,
    "dozen": 12, "single": 1, "pair": 2, "couple": 2,
}  # fmt: skip


def slug(text: str) -> str:
    """'Sports & Outdoors' -> 'sports-outdoors' (how the catalog tags a category)."""
    return _NON_ALNUM.sub("-", text.lower()).strip("-")


def words(text: str) -> list[str]:
    """Lower-cased words as written (hyphenated and contracted words kept whole)."""
    return WORD.findall(text.lower())


def singular(word: str) -> str | None:
    """A plain English singular guess, for words a vocabulary knows in one form only."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return None


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """A light suffix stem, so "fits", "fitted" and "fitting" meet "fit" and "matches" meets
    "matched". Conservative on purpose: it must never make two different claims equal."""
    w = word.lower()
    if "-" in w:
        return "-".join(stem(part) for part in w.split("-"))
    for suffix in ("'s", "’s"):
        if w.endswith(suffix):
            w = w[: -len(suffix)]
    if len(w) > 5 and w.endswith("ing"):
        w = _undouble(w[:-3])
    elif len(w) > 4 and w.endswith("ied"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
        w = _undouble(w[:-2])
    else:
        w = singular(w) or w
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]  # "size"/"sized" → "siz", "use"/"used" → "us"
    return w


def _undouble(w: str) -> str:
    if len(w) > 2 and w[-1] == w[-2] and w[-1] not in "lsz":
        return w[:-1]  # "fitted" → "fit"
    return w


def terms(text: str, *, parts: bool = True) -> list[str]:
    """Lower-cased words with possessives dropped ("women's" → "women"); with ``parts``, a
    hyphenated word is followed by its parts, so "t-shirt" also meets "shirt"."""
    out: list[str] = []
    for word in words(_POSSESSIVE.sub("", text)):
        out.append(word)
        if parts and "-" in word:
            out.extend(part for part in word.split("-") if part)
    return out


def stems(text: str, *, parts: bool = True) -> list[str]:
    """Stems of ``terms(text)``: how the check compares a claim with the facts."""
    return [stem(term) for term in terms(text, parts=parts)]
