"""What the check says: problem codes, problems that name the unsupported span, results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from backend.recommender.evidence import Evidence
from backend.recommender.snapshot import ProductRecord

NOT_JSON = "not_json"
BAD_SHAPE = "bad_shape"
TOO_LONG = "too_long"
EMPTY_REASON = "empty_reason"
UNKNOWN_PRODUCT = "unknown_product"
DUPLICATE_PRODUCT = "duplicate_product"
MISSING_PRODUCT = "missing_product"
UNKNOWN_FACT = "unknown_fact"  # a cited id that is not one of this product's facts
UNSUPPORTED_CLAIM = "unsupported_claim"  # words no cited fact, record or style word backs
UNSUPPORTED_NUMBER = "unsupported_number"
UNSUPPORTED_PRICE = "unsupported_price"
UNSUPPORTED_PRODUCT = "unsupported_product"  # another catalog product named
WRONG_ACTION = "wrong_action"
PROMPT_ECHO = "prompt_echo"
PROMPT_LEAK = "prompt_leak"


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
    span: str | None = None  # the words that failed, as written


@dataclass(frozen=True, slots=True)
class CheckedReason:
    item: CheckItem
    reason: str
    fact_ids: tuple[str, ...] = ()


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
