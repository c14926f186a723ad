"""Run the check over the corpora: rates per kind, the failures, the time per answer.

Used by the gate test (tests/llm/test_corpora.py) and the report
(``python -m tests.llm.corpora.evaluate``).
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from backend.llm.answer_grammar import REASON_WORDS
from backend.llm.check import CheckLimits, CheckResult, CheckVocabulary, check_answer
from backend.recommender.snapshot import ProductRecord
from tests.llm.corpora.generate import HERE, products, request_of


@dataclass
class Rates:
    total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    flagged: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[str, list[tuple[dict[str, Any], CheckResult]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    seconds: list[float] = field(default_factory=list)
    # Planted answers rejected for the planted claim itself (a problem quoting words of it).
    by_claim: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    missed: list[dict[str, Any]] = field(default_factory=list)

    def claim_rate(self, kind: str | None = None) -> float:
        total = sum(self.total.values()) if kind is None else self.total[kind]
        caught = sum(self.by_claim.values()) if kind is None else self.by_claim[kind]
        return caught / total if total else 0.0

    def rate(self, kind: str | None = None) -> float:
        total = sum(self.total.values()) if kind is None else self.total[kind]
        flagged = sum(self.flagged.values()) if kind is None else self.flagged[kind]
        return flagged / total if total else 0.0


def load(name: str) -> list[dict[str, Any]]:
    with (HERE / name).open() as f:
        return [json.loads(line) for line in f if line.strip()]


def run(rows: list[dict[str, Any]], catalog: dict[str, ProductRecord],
        vocabulary: CheckVocabulary) -> Rates:  # fmt: skip
    """``flagged``: answers the check rejected."""
    rates = Rates()
    for row in rows:
        request = request_of(row, catalog)
        facts = request.facts()
        text = json.dumps(row["answer"])
        start = time.perf_counter()
        result = check_answer(text, request.items, vocabulary, user_name=request.user_name,
                              summary=request.summary, facts=facts, limits=LIMITS)  # fmt: skip
        rates.seconds.append(time.perf_counter() - start)
        kind = row.get("kind") or row["strategy"]
        rates.total[kind] += 1
        if not result.ok:
            rates.flagged[kind] += 1
            rates.examples[kind].append((row, result))
        if "claim" in row:
            if names_the_claim(result, row):
                rates.by_claim[kind] += 1
            else:
                rates.missed.append(row)
    return rates


LIMITS = CheckLimits(max_reason_words=REASON_WORDS + 12)  # as the explainer sets them


def names_the_claim(result: CheckResult, row: dict[str, Any]) -> bool:
    """The check failed the planted reason with a problem quoting words of the claim."""
    claim = set(re.findall(r"[\w$%'-]+", row["claim"].lower()))
    target = row["items"][int(row["target"][1:]) - 1]["product_id"]
    return any(
        p.product_id == target and set(re.findall(r"[\w$%'-]+", p.span.lower())) & claim
        for p in result.problems
        if p.span
    )


def both() -> tuple[Rates, Rates]:
    catalog = products()
    vocabulary = CheckVocabulary.build(catalog.values())
    return run(load("planted.jsonl"), catalog, vocabulary), run(
        load("faithful.jsonl"), catalog, vocabulary
    )


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def report() -> str:
    planted, faithful = both()
    lines = [
        f"Planted answers caught: {planted.rate():.1%} of {sum(planted.total.values())}; "
        f"caught naming words of the planted claim itself: {planted.claim_rate():.1%}",
        f"Faithful answers rejected: {faithful.rate():.1%} of {sum(faithful.total.values())}",
        "",
        "| planted kind | answers | caught | caught by the claim's own words |",
        "|---|---|---|---|",
    ]
    for kind in planted.total:
        lines.append(f"| {kind} | {planted.total[kind]} | {planted.rate(kind):.1%} "
                     f"| {planted.claim_rate(kind):.1%} |")  # fmt: skip
    lines += ["", "| faithful, by strategy | answers | rejected |", "|---|---|---|"]
    for kind in faithful.total:
        lines.append(f"| {kind} | {faithful.total[kind]} | {faithful.rate(kind):.1%} |")
    seconds = planted.seconds + faithful.seconds
    lines += ["", f"Check time per answer: p50 {_p(seconds, 0.5):.2f} ms, "
              f"p99 {_p(seconds, 0.99):.2f} ms (n={len(seconds)})", ""]  # fmt: skip
    lines.append("Examples of each kind caught (the planted claim → the problem the check gave):")
    for kind, examples in planted.examples.items():
        for row, result in examples[:2]:
            claim = row["claim"].lower()
            p = next((p for p in result.problems if p.span and p.span.lower() in claim),
                     result.problems[0])  # fmt: skip
            lines.append(f'- {kind}: "{row["claim"]}" → {p.code}: {p.span!r}')
    lines.append("")
    lines.append(f"Planted claims the check did not name ({len(planted.missed)}):")
    lines += [f'- {row["kind"]}: "{row["claim"]}"' for row in planted.missed[:20]]
    lines.append("")
    lines.append("Faithful answers rejected (the reason → the problem):")
    for _kind, examples in faithful.examples.items():
        for _row, result in examples[:10]:
            p = result.problems[0]
            lines.append(f"- {p.code} {p.span!r}: {p.detail}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report())  # noqa: T201
