"""Grounded explanations: the whitelist check on the generated corpora, its time per answer,
and the prompt's size in tokens before and after the numbered facts.

- Gate figures: tests/llm/corpora (planted.jsonl, faithful.jsonl, from the demo catalog by
  ``python -m tests.llm.corpora.generate``): share of planted answers caught and of faithful
  answers rejected, per kind, with examples; the suite asserts the same gate.
- Check time: every corpus answer checked ``--rounds`` times; wall clock and thread CPU.
- Prompt tokens: the explainer's system + user prompt for every demo shopper's top 5
  (weighted and hybrid), counted with the cl100k_base and o200k_base BPE encodings
  (``bpe-openai``, which ships them: nothing is downloaded). "Before" renders the prompt
  files and the evidence context of git revision ``--before`` (the last one before the facts).

Run: ``python -m bench.grounded_bench``. Writes its section of ``bench/REPORT.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bpe_openai
from jinja2 import DictLoader, Environment, StrictUndefined

from backend.config import PROJECT_ROOT
from backend.llm.check import CheckVocabulary, check_answer
from backend.llm.prompts import PromptLibrary
from backend.llm.writer import ExplanationRequest, render_messages
from bench.report import write_section
from tests.llm.corpora.evaluate import LIMITS, both, load, report
from tests.llm.corpora.generate import lists, products, request_of

_PAST = {
    "view": "viewed",
    "click": "viewed",
    "add_to_cart": "added to cart",
    "remove_from_cart": "had in cart",
    "wishlist": "wishlisted",
    "purchase": "bought",
}


def legacy_messages(before: str, request: ExplanationRequest) -> tuple[str, str]:
    """The system and user prompts as revision ``before`` rendered them (its template files,
    its evidence context: the JSON dump of why/matched/because_of/rank per product)."""

    def show(name: str) -> str:
        return subprocess.run(
            ["git", "show", f"{before}:prompts/{name}"],
            cwd=PROJECT_ROOT, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip

    env = Environment(
        loader=DictLoader({n: show(n) for n in ("explain_system.j2", "explain_user.j2")}),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )  # fmt: skip
    items: list[dict[str, Any]] = []
    for i, item in enumerate(request.items):
        ev = item.evidence
        items.append({
            "ref": f"P{i + 1}", "name": item.product.name, "category": item.product.category,
            "price": f"{item.product.price:.2f}", "tags": list(item.product.tags),
            "in_stock": item.product.quantity > 0,
            "evidence": {
                "why": [s.detail for s in ev.sources],
                "matched_categories": [m.name for m in ev.matched_categories],
                "matched_tags": [m.name for m in ev.matched_tags],
                "because_of": [{"product": p.product_name, "action": _PAST.get(p.action, p.action)}
                               for p in ev.because_of],
                "popularity_rank": ev.popularity_rank,
            },
        })  # fmt: skip
    words = int(max(8, min(40, ((150 - 40) / len(items) - 12) * 0.75)))
    system = env.get_template("explain_system.j2").render(
        max_words_per_reason=words, item_count=len(items)
    )
    user = env.get_template("explain_user.j2").render(
        user_name=request.user_name, summary=request.summary, items=items
    )
    return system, user


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def tokens_section(before: str) -> tuple[str, dict[str, float]]:
    catalog = products()
    prompts = PromptLibrary(PROJECT_ROOT / "prompts")
    encodings = {name: bpe_openai.get_encoding(name) for name in ("cl100k_base", "o200k_base")}
    rows = []
    figures: dict[str, float] = {}
    for strategy in ("weighted", "hybrid"):
        entries = [e for e in lists() if e["strategy"] == strategy]
        for name, enc in encodings.items():
            old, new, facts = [], [], []
            for entry in entries:
                request = request_of(entry, catalog)
                system, user = legacy_messages(before, request)
                old.append(len(enc.encode(system)) + len(enc.encode(user)))
                messages, _, _ = render_messages(prompts, request, 150)
                new.append(sum(len(enc.encode(m.content)) for m in messages))
                facts.append(sum(len(p.facts) for p in request.facts().products))
            rows.append(
                f"| {strategy} | {name} | {len(entries)} | {statistics.median(old):.0f} "
                f"(max {max(old)}) | {statistics.median(new):.0f} (max {max(new)}) "
                f"| {statistics.median(facts):.0f} |"
            )
            figures[f"{strategy}:{name}:before"] = statistics.median(old)
            figures[f"{strategy}:{name}:after"] = statistics.median(new)
    table = "\n".join(
        [
            "| strategy | encoding | prompts | tokens before, median | tokens after, median "
            "| facts per prompt |",
            "|---|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
    return table, figures


def timing_section(rounds: int) -> str:
    catalog = products()
    vocabulary = CheckVocabulary.build(catalog.values())
    prepared = []
    for row in load("planted.jsonl") + load("faithful.jsonl"):
        request = request_of(row, catalog)
        prepared.append((json.dumps(row["answer"]), request, request.facts()))
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for text, request, facts in prepared:
            start, start_cpu = time.perf_counter(), time.thread_time()
            check_answer(text, request.items, vocabulary, user_name=request.user_name,
                         summary=request.summary, facts=facts, limits=LIMITS)  # fmt: skip
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
    p99_wall, p99_cpu = pct(wall, 0.99), pct(cpu, 0.99)
    return (
        f"{len(wall):,} checks (every corpus answer × {rounds}), 5 products each, milliseconds:\n\n"
        "| clock | median | p99 |\n|---|---:|---:|\n"
        f"| wall | {statistics.median(wall):.2f} | {p99_wall:.2f} |\n"
        f"| thread CPU | {statistics.median(cpu):.2f} | {p99_cpu:.2f} |\n\n"
        f"Target p99 ≤ 5 ms: CPU {'met' if p99_cpu <= 5 else 'NOT met'}, wall clock "
        f"{'met' if p99_wall <= 5 else 'NOT met'} (load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores; the gap is time waiting for a core)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", default="ddc66af", help="git revision before the facts")
    parser.add_argument("--report", type=Path, default=Path(__file__).with_name("REPORT.md"))
    args = parser.parse_args()
    planted, faithful = both()
    gate = report()
    tokens, _ = tokens_section(args.before)
    timing = timing_section(args.rounds)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    caught = "met" if planted.rate() >= 0.99 else "NOT met"
    rejected = "met" if faithful.rate() <= 0.05 else "NOT met"
    command = f"python -m bench.grounded_bench --rounds {args.rounds} --before {args.before}"
    text = f"""
Command: `{command}` ({stamp}, {platform.python_version()}, {platform.machine()}).
The gate is asserted by `pytest tests/llm/test_corpora.py`; the corpora are regenerated by
`python -m tests.llm.corpora.generate` (fixed seed).

### The gate: planted and faithful answers

Gate: ≥ 99% of planted answers caught ({planted.rate():.1%}: {caught}),
≤ 5% of faithful answers rejected ({faithful.rate():.1%}: {rejected}).
"Caught by the claim's own words": a problem of the planted reason quotes words of the
planted claim (not caught by luck elsewhere in the answer).

{gate}

How the figures came about, honestly: the phrase bank (tests/llm/corpora/phrases.py) was
written first, as a copywriter would write, and not changed to pass. The first run rejected
every faithful answer (an answer has five reasons and an intro; one stray word rejects it).
Reviewing the rejected words, these were added to the reviewed style vocabulary
(backend/llm/check/style.py) because they state nothing checkable: someone, companion,
inspired, character, design, follow, street/tick/box/play (idioms), fact, among, within,
request, product(s), item(s), and the phrases "your (next/new) favourite", "right up your
street"; and to what a fact licenses: "checked out" / "put" for views and carts, "currently"
for stock, "crowd", "number", "already shown" for a popular rank, "engaged" for
co-interactions, "some time ago" for months-old items. Claim words (price, shipping, stock,
ratings, past actions, materials, negation, inclusion, novelty, comparison) stay out: the
style file's docstring lists them. "step" and "up" were taken out again when planted
comparisons ("a step up from …") passed.

Known limits: a number licensed by one cited fact can be reused by a claim that sounds like
another ("You viewed it 3 times this week" passes when a cited fact says "3 days ago", which
also licenses "week"); a claim made only of words the product's description uses passes (the
description is the product's own record).

### Check time per answer

{timing}

### Prompt size per request (system + user), before and after the numbered facts

{tokens}
"""
    write_section(
        args.report, "grounded", "Grounded explanations: whitelist check and prompt size", text
    )
    print(text)  # noqa: T201


if __name__ == "__main__":
    main()
