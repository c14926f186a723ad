"""The grounded answer format: one pydantic model gives the JSON schema the LLM is asked for
and the shape the check accepts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GroundedReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(description="the product's ref, e.g. P1")
    reason: str = Field(description="why it fits the shopper, from the cited facts only")
    fact_ids: list[str] = Field(description="ids of the facts the reason relies on, e.g. F3")


class GroundedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intro: str = Field(description="one short sentence greeting the shopper by name")
    intro_fact_ids: list[str] = Field(description="ids of facts the intro relies on, or []")
    reasons: list[GroundedReason]


ANSWER_SCHEMA_NAME = "grounded_answer"


def answer_schema() -> dict[str, Any]:
    """The JSON schema for ``response_format`` (strict: every field required, no extras)."""
    return GroundedAnswer.model_json_schema()


@dataclass(frozen=True, slots=True)
class ParsedReason:
    ref: str
    reason: str
    fact_ids: tuple[str, ...] | None  # None: the answer cited nothing (an older format)


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    intro: str
    intro_fact_ids: tuple[str, ...]
    reasons: tuple[ParsedReason, ...]


class ShapeError(ValueError):
    pass


def parse_answer(text: str) -> ParsedAnswer:
    """JSON text → the answer's parts; ``ValueError`` when it is not JSON, ``ShapeError``
    when it is JSON of another shape. Lenient where servers vary (a fenced block, numeric
    ids, no fact ids), strict on everything the check relies on."""
    body = text.strip()
    if body.startswith("```"):  # a fenced block: models add these even in JSON mode
        body = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", body)
    try:
        data = json.loads(body)
    except RecursionError as exc:
        raise ValueError("too deeply nested") from exc
    if not isinstance(data, dict):
        raise ShapeError("not an object")
    intro, reasons = data.get("intro"), data.get("reasons")
    if not isinstance(intro, str) or not isinstance(reasons, list):
        raise ShapeError("intro or reasons missing")
    parsed: list[ParsedReason] = []
    for r in reasons:
        if (
            not isinstance(r, dict)
            or not isinstance(r.get("product_id"), str | int)
            or not isinstance(r.get("reason"), str)
        ):
            raise ShapeError("a reason has the wrong shape")
        parsed.append(ParsedReason(str(r["product_id"]), str(r["reason"]), _ids(r.get("fact_ids"))))
    return ParsedAnswer(intro, _ids(data.get("intro_fact_ids")) or (), tuple(parsed))


def _ids(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ShapeError("fact ids must be a list of ids")
    return tuple(str(v).strip().upper() for v in value)


SHAPE_HINT = (
    'the answer must be {"intro": "...", "intro_fact_ids": [], "reasons": '
    '[{"product_id": "P1", "reason": "...", "fact_ids": ["F1"]}]}'
)
