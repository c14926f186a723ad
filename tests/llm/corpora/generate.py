"""Generate the check's corpora from the demo catalog: ``python -m tests.llm.corpora.generate``.

Real recommendations (rules, weighted, popularity and hybrid with CF models and text
embeddings) for every demo shopper, their numbered facts, then:

- faithful.jsonl: answers whose reasons restate only cited facts (phrases.FAITHFUL);
- planted.jsonl: the same kind of answers with ONE unsupported claim (phrases.PLANTED) in
  one reason, spread evenly over the kinds.

Deterministic (fixed seed). Each line carries what the check needs (the items' evidence,
the past items' times, the summary) and the answer, so a reviewer can read it as is.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from backend.config import PROJECT_ROOT
from backend.db.seed import seed_engine_data
from backend.llm.answer_grammar import REASON_WORDS
from backend.llm.facts import Fact, ProductFacts
from backend.llm.writer import ExplainedItem, ExplanationRequest
from backend.recommender.cf import ModelStore, user_items_matrix
from backend.recommender.embedder import product_text
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot, ProductRecord
from backend.recommender.strategies import (
    PopularityStrategy,
    RecommendRequest,
    RulesStrategy,
    WeightedStrategy,
)
from backend.recommender.strategies.blend import hybrid
from tests.llm.corpora import phrases as ph
from tests.recommender.fakes import FakeEmbedder

HERE = Path(__file__).parent
SEED = 20261206
PER_KIND = 36
FAITHFUL_COUNT = 360


def _models(snapshot: CatalogSnapshot, history: dict[uuid.UUID, list[InteractionRecord]]):  # type: ignore[no-untyped-def]
    from backend.recommender.cf import CFParams, train

    users = list(history)
    rows = [
        (u, snapshot.index[r.product_id], 1.0)
        for u, uid in enumerate(users)
        for r in history[uid]
        if r.product_id in snapshot.index
    ]
    matrix = user_items_matrix(rows, len(users), len(snapshot.products))
    params = CFParams(knn_neighbours=20, als_factors=8, als_iterations=10, ease_lambda=50.0)
    return train(matrix, [p.id for p in snapshot.products], params=params,
                 item_embeddings=snapshot.embeddings, kinds=("cosine", "ease"))  # fmt: skip


def lists() -> list[dict[str, Any]]:
    """Every demo shopper's top 5 under each strategy, with what the facts need."""
    snapshot, history, names = seed_engine_data(PROJECT_ROOT / "seed_data")
    texts = [product_text(p.name, p.category, p.tags, p.description) for p in snapshot.products]
    snapshot.embeddings = FakeEmbedder(dim=256).encode(texts)
    store = ModelStore(_models(snapshot, history))
    strategies = {
        "rules": RulesStrategy(),
        "weighted": WeightedStrategy(),
        "popularity": PopularityStrategy(),
        "hybrid": hybrid(store),
    }
    now = max(r.created_at for records in history.values() for r in records)
    out = []
    for user_id, records in sorted(history.items(), key=lambda kv: str(kv[0])):
        past: dict[uuid.UUID, datetime] = {}
        for r in records:
            if r.product_id is not None and (
                r.product_id not in past or r.created_at > past[r.product_id]
            ):
                past[r.product_id] = r.created_at
        for name, strategy in strategies.items():
            recs = strategy.recommend(snapshot, RecommendRequest(records, top_n=5, now=now))
            if not recs:
                continue
            out.append({
                "user_name": names.get(str(user_id), "Shopper"),
                "strategy": name,
                "now": now.isoformat(),
                "past_times": {str(k): v.isoformat() for k, v in past.items()},
                "summary": "",
                "items": [
                    {"product_id": str(snapshot.products[r.index].id),
                     "evidence": r.evidence.model_dump(mode="json")}
                    for r in recs
                ],
            })  # fmt: skip
    return out


def products() -> dict[str, ProductRecord]:
    snapshot, _, _ = seed_engine_data(PROJECT_ROOT / "seed_data")
    return {str(p.id): p for p in snapshot.products}


def request_of(entry: dict[str, Any], catalog: dict[str, ProductRecord]) -> ExplanationRequest:
    """The request a corpus line was written for (what the check runs against)."""
    from backend.recommender.evidence import Evidence

    items = tuple(
        ExplainedItem(catalog[i["product_id"]], Evidence.model_validate(i["evidence"]))
        for i in entry["items"]
    )
    return ExplanationRequest(
        user_name=entry["user_name"],
        summary=entry["summary"],
        items=items,
        past_times={
            uuid.UUID(k): datetime.fromisoformat(v) for k, v in entry["past_times"].items()
        },
        now=datetime.fromisoformat(entry["now"]),
    )


# --- writing ------------------------------------------------------------------------------


_WHEN = re.compile(r"(today|yesterday|last week|(\d+) (days|weeks|months) ago)(?:;|$)")


def _bucket(text: str) -> tuple[str, dict[str, int]]:
    """The WHEN bucket of a past fact's time text ("3 days ago" → days, d=3)."""
    m = _WHEN.search(text)
    if m is None:
        return "none", {}
    if m.group(2) is None:
        return {"today": "today", "yesterday": "yesterday", "last week": "week"}[m.group(1)], {}
    n = int(m.group(2))
    return m.group(3), {"d": n, "w": n, "m": n}


def _did(fact: Fact, rng: random.Random) -> str:
    name, action = fact.names[0]
    verb = rng.choice(ph.PAST_VERBS.get(action or "view", ["viewed"]))
    did = verb.format(past=name) if "{past}" in verb else f"{verb} the {name}"
    bucket, nums = _bucket(fact.text)
    when = rng.choice(ph.WHEN[bucket]).format(**nums) if nums else rng.choice(ph.WHEN[bucket])
    return did, when  # type: ignore[return-value]


def faithful_sentence(fact: Fact, p: ProductFacts, rng: random.Random) -> str | None:
    product = p.product
    slots: dict[str, Any] = {"cat": product.category, "cat_lower": product.category.lower()}
    kind = fact.kind
    if kind == "past":
        did, when = _did(fact, rng)  # type: ignore[misc]
        slots |= {"did": did, "when": when}
    elif kind in ("similar", "co_interaction"):
        slots |= {
            "sim": fact.names[0][0] if fact.names else "",
            "past": fact.names[0][0] if fact.names else "",
        }
        if kind == "similar" and not fact.names:
            return None
        if kind == "co_interaction":
            slots["n"] = fact.text.split()[0]
            if slots["n"] == "1":
                return None  # "1 shoppers": the templates are plural
    elif kind == "category":
        slots["cats"] = fact.text.split(": ", 1)[1].replace(", ", " and ")
    elif kind == "tag":
        tags = fact.text.split(": ", 1)[1].split(", ")[:2]
        slots["tags"] = " and ".join(t.replace("-", " ") for t in tags)
    elif kind == "popularity":
        rank = int(fact.text.split("#")[1].split()[0])
        if rank > 10:
            return None
        slots |= {"rank": rank, "count": fact.text.split("(")[1].split()[0]}
    elif kind == "price":
        slots["price"] = f"{product.price:.2f}"
    elif kind == "stock":
        if "out of" in fact.text:
            return None
    elif kind == "own_tags":
        tags = [
            t.replace("-", " ") for t in product.tags if t.replace("-", " ") != slots["cat_lower"]
        ]
        if len(tags) < 2:
            return None
        slots |= {"tag1": tags[0], "tag2": tags[1]}
    else:
        return None
    template = rng.choice(ph.FAITHFUL[kind])
    text = template.format(**slots)
    return " ".join(text.split()).replace(" .", ".").replace(" ;", ";").replace(" ,", ",")


def faithful_reason(p: ProductFacts, rng: random.Random) -> tuple[str, list[str]]:
    facts = [f for f in p.facts if f.kind != "source"]
    rng.shuffle(facts)
    chosen: list[tuple[str, Fact]] = []
    for fact in sorted(facts, key=lambda f: f.kind != "past"):  # past first when there is one
        sentence = faithful_sentence(fact, p, rng)
        words = sum(len(s.split()) for s, _ in chosen) + len((sentence or "").split())
        if sentence and words <= REASON_WORDS:  # a faithful answer keeps to the prompt's budget
            chosen.append((sentence, fact))
        if len(chosen) == rng.choice((1, 2, 2)):
            break
    rng.shuffle(chosen)
    return " ".join(s for s, _ in chosen), [f.id for _, f in chosen]


def answer(
    entry: dict[str, Any], catalog: dict[str, ProductRecord], rng: random.Random
) -> dict[str, Any]:
    request = request_of(entry, catalog)
    sheet = request.facts()
    first = entry["user_name"].split()[0]
    intro = rng.choice(ph.INTROS).format(first=first, count=len(request.items))
    reasons = []
    for p in sheet.products:
        text, ids = faithful_reason(p, rng)
        reasons.append({"product_id": p.ref, "reason": text, "fact_ids": ids})
    return {"intro": intro, "intro_fact_ids": [], "reasons": reasons}


def plant(kind: str, entry: dict[str, Any], base: dict[str, Any], catalog: dict[str, ProductRecord],
          rng: random.Random) -> tuple[dict[str, Any], str, str] | None:  # fmt: skip
    """``base`` with one unsupported claim of ``kind`` in one reason, or None when no
    product of the list can carry that claim untruthfully."""
    request = request_of(entry, catalog)
    sheet = request.facts()
    order = list(range(len(sheet.products)))
    rng.shuffle(order)
    names_in_list = {i.product.name for i in request.items}
    for k in order:
        p = sheet.products[k]
        product = p.product
        record = " ".join(
            [product.name, product.category, product.description, *product.tags]
        ).lower()
        fact_text = " ".join(f.text for f in p.facts).lower()
        past = [f for f in p.facts if f.kind == "past"]
        popular = any(
            f.kind == "popularity" and int(f.text.split("#")[1].split()[0]) <= 10 for f in p.facts
        )
        others = [
            q
            for q in catalog.values()
            if q.name not in names_in_list and q.name.lower() not in fact_text
        ]
        template = rng.choice(ph.PLANTED[kind])
        price = float(product.price)
        slots: dict[str, Any] = {
            "price": f"{product.price:.2f}",
            "fake": f"{price * rng.choice((0.7, 0.8, 0.85)):.2f}",
            "round": int(price) + rng.choice((1, 5, 10)),
            "pct": rng.choice((10, 15, 20, 25, 30, 40)),
            "n": rng.choice((2, 3, 4, 5)),
            "rating": rng.choice(("4.5", "4.7", "4.8", "4.9")),
            "big": rng.choice((200, 500, 1000, 2500)),
            "cat": product.category,
            "cat_lower": product.category.lower(),
            "other": rng.choice(others).name,
            "material": rng.choice(ph.MATERIALS),
            "country": rng.choice(ph.COUNTRIES),
            "tag1": product.tags[-1].replace("-", " ") if product.tags else "waterproof",
        }
        if "{past}" in template or "{did}" in template:
            if not past:
                continue
            name, action = past[0].names[0]
            slots["past"] = name
            if "{did}" in template:
                bucket, _ = _bucket(past[0].text)
                wrong = {"today": "last year", "yesterday": "a month ago", "days": "last year",
                         "week": "yesterday", "weeks": "yesterday", "months": "yesterday",
                         "none": "yesterday"}[bucket]  # fmt: skip
                verb = rng.choice(ph.PAST_VERBS.get(action or "view", ["viewed"]))
                slots["did"] = verb.format(past=name) if "{past}" in verb else f"{verb} the {name}"
                slots["wrong_when"] = wrong
            elif "purchased" in template and action == "purchase":
                continue  # true then
        claim = template.format(**slots)
        words = {w.strip(".,:!").lower() for w in claim.split()}
        if kind == "material" and any(w in record for w in words if len(w) > 3):
            continue  # the record says so: not a lie for this product
        if kind == "social" and "popular" in claim and popular:
            continue
        if kind == "compatibility" and "{tag1}" in template and not product.tags:
            continue
        reason = base["reasons"][k]
        joiner = rng.choice(ph.JOINERS)
        joined = claim
        if joiner.strip().endswith((",", ":")):
            joined = claim[0].lower() + claim[1:]
        text = f"{reason['reason']}{joiner}{joined}" if reason["reason"] else claim
        planted = json.loads(json.dumps(base))
        planted["reasons"][k] = {
            "product_id": p.ref,
            "reason": text,
            "fact_ids": reason["fact_ids"],
        }
        return planted, p.ref, claim
    return None


def main() -> None:
    rng = random.Random(SEED)
    catalog = products()
    entries = lists()
    faithful, planted = [], []
    order = list(range(len(entries)))
    while len(faithful) < FAITHFUL_COUNT:
        rng.shuffle(order)
        for i in order[: FAITHFUL_COUNT - len(faithful)]:
            entry = entries[i]
            number = f"faithful-{len(faithful) + 1:04d}"
            faithful.append({"id": number, **entry, "answer": answer(entry, catalog, rng)})
    counts: dict[str, int] = defaultdict(int)
    for kind in ph.PLANTED:
        tries = 0
        while counts[kind] < PER_KIND and tries < 2000:
            tries += 1
            entry = entries[rng.randrange(len(entries))]
            result = plant(kind, entry, answer(entry, catalog, rng), catalog, rng)
            if result is None:
                continue
            planted_answer, ref, claim = result
            counts[kind] += 1
            planted.append({"id": f"planted-{kind}-{counts[kind]:03d}", "kind": kind, "target": ref,
                            "claim": claim, **entry, "answer": planted_answer})  # fmt: skip
    for name, rows in (("faithful.jsonl", faithful), ("planted.jsonl", planted)):
        with (HERE / name).open("w") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"faithful: {len(faithful)}, planted: {len(planted)} {dict(counts)}")  # noqa: T201


if __name__ == "__main__":
    main()
