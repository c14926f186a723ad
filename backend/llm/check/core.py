"""``check_answer``: a grounded answer ships only if every claim in it is backed.

Structure first (JSON of the answer model, every recommended product exactly once, cited
ids that are that product's facts), then each reason against the facts it cites plus its
own record (``claims``), then the intro against the shopper's name, the recommended
products' names and the facts it cites. Deliberately strict: a false alarm costs a template
explanation, a miss costs the shopper's trust.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from backend.llm.check.answer import SHAPE_HINT, ParsedAnswer, ShapeError, parse_answer
from backend.llm.check.claims import Allowed, TextCheck, allowed_for
from backend.llm.check.result import (
    BAD_SHAPE,
    DUPLICATE_PRODUCT,
    EMPTY_REASON,
    MISSING_PRODUCT,
    NOT_JSON,
    TOO_LONG,
    UNKNOWN_FACT,
    UNKNOWN_PRODUCT,
    CheckedAnswer,
    CheckedReason,
    CheckItem,
    CheckLimits,
    CheckProblem,
    CheckResult,
    item_ref,
)
from backend.llm.check.vocabulary import CheckVocabulary
from backend.llm.facts import Fact, FactSheet, build_facts
from backend.text import NUMBER_WORDS


class _Problems:
    def __init__(self) -> None:
        self.items: list[CheckProblem] = []

    def __call__(
        self, code: str, detail: str, product_id: str | None = None, span: str | None = None
    ) -> None:
        self.items.append(CheckProblem(code, detail, product_id, span))


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
    facts: FactSheet | None = None,
) -> CheckResult:
    """Verify an LLM answer against the recommended items; pass/fail with machine reasons.

    ``facts``: the numbered facts the prompt showed (built from ``items`` and ``summary``
    when not given). ``system_prompts`` are the instructions the model saw; repeating them
    is a leak. ``partial``: the answer so far, while it streams: items without a reason yet
    are not a problem, and the checked answer holds the reasons there are, in order.
    """
    limits = limits or CheckLimits()
    flag = _Problems()
    if len(text) > limits.max_answer_chars:
        flag(TOO_LONG, f"the answer is {len(text)} characters long")
        return CheckResult(tuple(flag.items))
    try:
        parsed = parse_answer(text)
    except ShapeError:
        return CheckResult((CheckProblem(BAD_SHAPE, SHAPE_HINT),))
    except ValueError:
        return CheckResult((CheckProblem(NOT_JSON, "the answer is not valid JSON"),))
    sheet = facts or build_facts(items, summary=summary)
    checker = TextCheck(vocabulary, system_prompts, flag)
    found = _reasons(parsed, items, sheet, checker, limits, user_name, flag)
    for i, item in enumerate(items):
        if i not in found and not partial:
            flag(MISSING_PRODUCT, f"{item.product.name} ({item_ref(i)}) has no reason",
                 str(item.product.id))  # fmt: skip
    intro = parsed.intro.strip()
    _intro(intro, parsed, items, sheet, checker, limits, user_name, flag)
    if flag.items:
        return CheckResult(tuple(flag.items))
    checked = tuple(
        CheckedReason(item=items[i], reason=found[i][0], fact_ids=found[i][1])
        for i in range(len(items))
        if i in found
    )
    return CheckResult(problems=(), answer=CheckedAnswer(intro=intro, reasons=checked))


def _reasons(
    parsed: ParsedAnswer,
    items: Sequence[CheckItem],
    sheet: FactSheet,
    checker: TextCheck,
    limits: CheckLimits,
    user_name: str,
    flag: _Problems,
) -> dict[int, tuple[str, tuple[str, ...]]]:
    refs: dict[str, int] = {}
    for i, item in enumerate(items):
        refs[item_ref(i).lower()] = i
        refs[str(i + 1)] = i
        refs[str(item.product.id).lower()] = i
    found: dict[int, tuple[str, tuple[str, ...]]] = {}
    for entry in parsed.reasons:
        i_or_none = refs.get(entry.ref.strip().lower())
        if i_or_none is None:
            flag(UNKNOWN_PRODUCT,
                 f"product_id {entry.ref!r} is not one of the recommended products")  # fmt: skip
            continue
        i = i_or_none
        item = items[i]
        pid, name = str(item.product.id), item.product.name
        if i in found:
            flag(DUPLICATE_PRODUCT, f"{name} has more than one reason", pid)
            continue
        reason = entry.reason.strip()
        own = sheet.products[i].facts if i < len(sheet.products) else ()
        cited = _cited(entry.fact_ids, own, f"the reason for {name}", pid, flag)
        found[i] = (reason, tuple(f.id for f in cited))
        where = f"the reason for {name}"
        if not reason:
            flag(EMPTY_REASON, f"{where} is empty", pid)
            continue
        if len(reason) > limits.max_reason_chars or len(reason.split()) > limits.max_reason_words:
            flag(TOO_LONG, f"{where} is longer than {limits.max_reason_words} words", pid)
        allowed = allowed_for(cited, [item.product], [user_name])
        checker.check(reason, allowed, where, pid)
    return found


def _cited(
    ids: tuple[str, ...] | None,
    own: Sequence[Fact],
    where: str,
    pid: str | None,
    flag: _Problems,
) -> list[Fact]:
    """The facts a reason cites; an answer that cites nothing is judged against all of its
    product's facts (servers without JSON schema often drop the field)."""
    if ids is None:
        return list(own)
    by_id = {f.id: f for f in own}
    cited = []
    for fact_id in ids:
        fact = by_id.get(fact_id)
        if fact is None:
            flag(UNKNOWN_FACT, f"{where} cites {fact_id!r}, which is not one of its facts",
                 pid, fact_id)  # fmt: skip
        else:
            cited.append(fact)
    return cited


def _intro(
    intro: str,
    parsed: ParsedAnswer,
    items: Sequence[CheckItem],
    sheet: FactSheet,
    checker: TextCheck,
    limits: CheckLimits,
    user_name: str,
    flag: _Problems,
) -> None:
    """Greeting and name, the recommended products by name, the count, or cited facts."""
    if len(intro) > limits.max_intro_chars or len(intro.split()) > limits.max_intro_words:
        flag(TOO_LONG, f"the intro is longer than {limits.max_intro_words} words")
    cited: list[Fact] = []
    for fact_id in parsed.intro_fact_ids:
        fact = sheet.by_id.get(fact_id)
        if fact is None:
            flag(UNKNOWN_FACT, f"the intro cites {fact_id!r}, which is not a fact given",
                 None, fact_id)  # fmt: skip
        else:
            cited.append(fact)
    count = len(items)
    count_words = [w for w, n in NUMBER_WORDS.items() if n == count]
    allowed = allowed_for(cited, [], [user_name, *count_words])
    allowed.numbers.add(Decimal(count))
    for item in items:
        names_only = Allowed()
        names_only.add_record(item.product)
        allowed.names |= names_only.names
        allowed.add_text(item.product.name)
        allowed.add_text(item.product.category)
    checker.check(intro, allowed, "the intro", None, intro=True)
