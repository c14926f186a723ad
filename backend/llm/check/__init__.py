"""The evidence check: an LLM answer ships only if every claim in it is backed.

A whitelist, not a blacklist: a reason's words must come from the numbered facts it cites
(``backend.llm.facts``), its product's own record, or a small reviewed style vocabulary
(``style``); its numbers from its cited facts; other products only as its facts name them.
Modules: ``answer`` (the answer model and its schema), ``claims`` (one text against what it
may say), ``core`` (``check_answer``), ``vocabulary`` (catalog names), ``result`` (codes and
problems). Pure functions over plain data: the chat replies reuse it.
"""

from backend.llm.check.answer import (
    ANSWER_SCHEMA_NAME,
    GroundedAnswer,
    GroundedReason,
    answer_schema,
)
from backend.llm.check.core import check_answer
from backend.llm.check.result import (
    BAD_SHAPE,
    DUPLICATE_PRODUCT,
    EMPTY_REASON,
    MISSING_PRODUCT,
    NOT_JSON,
    PROMPT_ECHO,
    PROMPT_LEAK,
    TOO_LONG,
    UNKNOWN_FACT,
    UNKNOWN_PRODUCT,
    UNSUPPORTED_CLAIM,
    UNSUPPORTED_NUMBER,
    UNSUPPORTED_PRICE,
    UNSUPPORTED_PRODUCT,
    WRONG_ACTION,
    CheckedAnswer,
    CheckedReason,
    CheckItem,
    CheckLimits,
    CheckProblem,
    CheckResult,
    item_ref,
)
from backend.llm.check.vocabulary import CheckVocabulary, VocabularyCache

__all__ = [
    "ANSWER_SCHEMA_NAME",
    "BAD_SHAPE",
    "DUPLICATE_PRODUCT",
    "EMPTY_REASON",
    "MISSING_PRODUCT",
    "NOT_JSON",
    "PROMPT_ECHO",
    "PROMPT_LEAK",
    "TOO_LONG",
    "UNKNOWN_FACT",
    "UNKNOWN_PRODUCT",
    "UNSUPPORTED_CLAIM",
    "UNSUPPORTED_NUMBER",
    "UNSUPPORTED_PRICE",
    "UNSUPPORTED_PRODUCT",
    "WRONG_ACTION",
    "CheckItem",
    "CheckLimits",
    "CheckProblem",
    "CheckResult",
    "CheckVocabulary",
    "CheckedAnswer",
    "CheckedReason",
    "GroundedAnswer",
    "GroundedReason",
    "VocabularyCache",
    "answer_schema",
    "check_answer",
    "item_ref",
]
