"""Chat turn latency in offline mode (rule parser, keyword or semantic retrieval, replies).

A synthetic catalog of 10k products (categories, brands, colours, type and feature tags, a
short description) is served by the real ``ChatService`` with the in-process cache. Scripted
conversations (new request, refinements, references, negations, "show me more", resets) run
for a guest and for a known shopper with 200 past interactions; every turn is one
``chat_turn`` call, timed end to end (cache read, parse, state, retrieval, evidence, reasons,
reply, cache write). Three setups: keyword retrieval with template replies (no index); the
semantic path over 384-d product vectors (as MiniLM gives; random unit vectors here, and a
hashing query embedder, so the model's own ~16 ms per new query is not in the figure); and
that plus the LLM reply through the evidence check, with an instant fake LLM (our overhead
around the model, not the model). The first turn after a catalog change also builds the
vocabulary and keyword index; that one-off cost is reported separately.

Run: ``make bench`` (or ``python -m bench.chat_bench --products 10000``). Writes its section
of ``bench/REPORT.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

from backend.chat.ranking import ChatRetriever, KeywordRanker, SemanticRanker, TextRanker
from backend.chat.replies import CHAT_REPLY_PROMPTS, ChatReplies, LLMReplies, TemplateReplies
from backend.chat.schemas import ChatRequest
from backend.chat.service import ChatService, Shopper
from backend.config import PROJECT_ROOT
from backend.infra.cache import MemoryCache
from backend.llm.check import VocabularyCache
from backend.llm.client import ChatMessage, CircuitStatus, Completion, Tool
from backend.llm.prompts import PromptLibrary
from backend.llm.writer import CheckedWriter
from backend.recommender.embedder import Vectors
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot, ProductRecord, SnapshotManager
from bench.report import write_section

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CATEGORIES = {
    "Electronics": ["earbuds", "headphones", "speaker", "keyboard", "mouse", "smartwatch"],
    "Clothing": ["jacket", "sneakers", "sweater", "jeans", "leggings", "beanie"],
    "Kitchen": ["skillet", "knives", "kettle", "grinder", "mixer", "cookware"],
    "Home": ["lamp", "blanket", "candle", "towels", "clock", "bedding"],
    "Sports & Outdoors": ["yoga", "tent", "dumbbells", "bottle", "hiking", "mat"],
    "Books": ["mystery", "fantasy", "cookbook", "history", "thriller", "fiction"],
    "Beauty": ["serum", "lipstick", "perfume", "shampoo", "skincare", "sunscreen"],
    "Garden": ["planters", "hose", "seeds", "tools", "watering", "composting"],
    "Office": ["notebook", "chair", "desk", "planner", "pens", "stationery"],
    "Pet Supplies": ["dog", "cat", "leash", "bed", "toys", "grooming"],
    "Toys & Games": ["puzzle", "board-game", "plush", "blocks", "robotics", "card-game"],
    "Health": ["vitamins", "protein", "massage", "thermometer", "sleep", "first-aid"],
}
COLOURS = ["black", "white", "grey", "navy", "blue", "red", "green", "beige", "brown", "pink"]
FEATURES = (
    "wireless waterproof organic vegan lightweight rechargeable ergonomic recycled handmade "
    "portable compact premium-grade"
).split()
BRANDS = [
    f"{a} {b}"
    for a in "Nordic Velvet Copper Summit Maple Harbor Aurora Kestrel Linden Ember".split()
    for b in ("Works", "Lane", "Co.", "Goods", "& Oak")
]
SCRIPT = [
    "wireless earbuds under $80",
    "cheaper",
    "show me more",
    "not black",
    "more like the second one",
    "next",
    "start over, a waterproof jacket between 50 and 150",
    "in navy or grey",
    "no Kestrel Works",
    "cheaper than #1",
    "a gift for my dad who likes hiking",
    "something for the home, not lighting, around 40",
    "cheapest kitchen knives",
    "zapatos rojos 👟",
]


def catalog(n: int, seed: int = 11) -> list[ProductRecord]:
    rng = np.random.default_rng(seed)
    names = list(CATEGORIES)
    products = []
    for i in range(n):
        category = names[int(rng.integers(len(names)))]
        kind = CATEGORIES[category][int(rng.integers(6))]
        brand = BRANDS[int(rng.integers(len(BRANDS)))]
        colour = COLOURS[int(rng.integers(len(COLOURS)))]
        features = list(rng.choice(FEATURES, size=int(rng.integers(1, 4)), replace=False))
        slug = category.lower().replace(" & ", "-")
        tags = (slug, kind, colour, *features)
        products.append(
            ProductRecord(
                id=uuid.UUID(int=i + 1),
                name=f"{brand} {kind.replace('-', ' ').title()} {i}",
                category=category,
                price=Decimal(f"{rng.uniform(3, 400):.2f}"),
                quantity=int(rng.integers(0, 40)),
                tags=tags,
                description=f"A {colour} {kind} by {brand}: {', '.join(features)}. "
                "Made for everyday use, with a two-year warranty.",
            )
        )
    return products


DIM = 384


class HashEmbedder:
    """A query vector per text from its hash: the cost of the semantic path without a model."""

    dim = DIM
    model_id = "bench-hash"

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> Vectors:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
            out[row] = v / np.linalg.norm(v)
        return out


class InstantLLM:
    """Answers at once with a reply built from the prompt's own facts (it passes the check)."""

    model = "bench-instant"
    _ITEM = re.compile(r"^\[(P\d+)\] .+? \| category: (.+?)(?: \||$)", re.M)

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        json_mode: bool = False,
        tool: Tool | None = None,
        **_options: object,
    ) -> Completion:
        reasons = [
            {"product_id": ref, "reason": f"A {category} pick that fits your request."}
            for ref, category in self._ITEM.findall(messages[1].content)
        ]
        text = json.dumps({"intro": "Here is what I found for you.", "reasons": reasons})
        return Completion(text=text, model=self.model, finish_reason="stop")

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Iterator[str]:
        yield self.complete(messages).text

    def circuit(self) -> CircuitStatus:
        return CircuitStatus("closed", 0)


class BenchShoppers:
    def __init__(self, history: list[InteractionRecord]) -> None:
        self.history = history

    def lookup(self, user_id: uuid.UUID) -> Shopper | None:
        return Shopper(name="Bench Shopper", interactions=self.history)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


SETUPS = ("keywords, template reply", "semantic, template reply", "semantic, checked LLM reply")


def run(n_products: int, rounds: int) -> str:
    products = catalog(n_products)
    rng = np.random.default_rng(3)
    popularity = {p.id: float(rng.zipf(1.6)) for p in products}
    snapshot = CatalogSnapshot.build(products, popularity, version="bench")
    vectors = rng.standard_normal((len(products), DIM)).astype(np.float32)
    snapshot.embeddings = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    plain = CatalogSnapshot.build(products, popularity, version="bench-plain")  # no vectors
    history = [
        InteractionRecord(
            action=["view", "click", "add_to_cart", "purchase"][k % 4],
            created_at=NOW - timedelta(days=k % 60),
            product_id=products[int(rng.integers(len(products)))].id,
        )
        for k in range(200)
    ]
    prompts = PromptLibrary(PROJECT_ROOT / "prompts")

    def service(setup: str) -> ChatService:
        snap = plain if setup.startswith("keywords") else snapshot
        snapshots = SnapshotManager(load=lambda: snap, version=lambda: snap.version)
        ranker: TextRanker = KeywordRanker()
        replies: ChatReplies = TemplateReplies(prompts)
        if setup.startswith("semantic"):
            ranker = SemanticRanker(HashEmbedder(), keywords=ranker)
        if setup.endswith("LLM reply"):
            writer = CheckedWriter(
                client=InstantLLM(),
                prompts=prompts,
                vocabulary=VocabularyCache(snapshots.get),
                templates=CHAT_REPLY_PROMPTS,
            )
            replies = LLMReplies(writer)
        return ChatService(
            snapshots=snapshots,
            cache=MemoryCache(),
            prompts=prompts,
            retriever=ChatRetriever(ranker),
            replies=replies,
            shoppers=BenchShoppers(history),
            clock=lambda: NOW,
        )

    results: dict[tuple[str, str], list[float]] = {}
    cold: dict[str, float] = {}
    llm_sources: dict[str, int] = {}
    for setup in SETUPS:
        chat = service(setup)
        started = time.perf_counter()
        chat.chat_turn(ChatRequest(message="hello, a wireless gift"))  # builds the indexes
        cold[setup] = (time.perf_counter() - started) * 1000
        for who, user_id in (("guest", None), ("known shopper", uuid.uuid4())):
            times = results.setdefault((setup, who), [])
            for _ in range(rounds):
                session: uuid.UUID | None = None
                for message in SCRIPT:
                    request = ChatRequest(session_id=session, user_id=user_id, message=message)
                    t0 = time.perf_counter()
                    response = chat.chat_turn(request)
                    times.append((time.perf_counter() - t0) * 1000)
                    session = response.session_id
                    if setup.endswith("LLM reply"):
                        key = response.reply_fallback_reason or response.reply_source
                        llm_sources[key] = llm_sources.get(key, 0) + 1

    lines = [
        f"Command: `python -m bench.chat_bench --products {n_products} --rounds {rounds}` "
        f"(Python {platform.python_version()}, {platform.machine()}).",
        "",
        f"Offline chat turns on a synthetic catalog of {n_products:,} products "
        f"({len(SCRIPT)}-turn scripted conversations with paging × {rounds} rounds per shopper "
        "kind; rule parser, in-process cache). Semantic: 384-d product vectors and a hashing "
        "query embedder (the real model adds ~16 ms per new query, cached per query text). "
        "Checked LLM reply: an instant fake LLM, so the row is our overhead (prompt, evidence "
        "check, render), not the model's time.",
        "",
        "| setup | shopper | turns | median ms | p95 ms | p99 ms | max ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (setup, who), values in results.items():
        lines.append(
            f"| {setup} | {who} | {len(values)} | {statistics.median(values):.1f} | "
            f"{percentile(values, 95):.1f} | {percentile(values, 99):.1f} | {max(values):.1f} |"
        )
    lines.append("")
    for setup in SETUPS:
        every = [v for (s, _), values in results.items() if s == setup for v in values]
        p95 = percentile(every, 95)
        lines.append(
            f"- {setup}: all turns median {statistics.median(every):.1f} ms, p95 {p95:.1f} ms "
            f"(target p95 ≤ 100 ms: {'met' if p95 <= 100 else 'NOT met'}); first turn after a "
            f"catalog change (vocabulary and keyword index) {cold[setup]:.0f} ms, once per "
            "snapshot."
        )
    lines += [
        "",
        "Checked LLM reply setup, replies by source or fallback reason: "
        f"{json.dumps(llm_sources, sort_keys=True)} (`llm`: passed the evidence check; "
        "`no_items`: a turn with no products, answered by the template without asking).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--report", type=Path, default=Path(__file__).with_name("REPORT.md"))
    args = parser.parse_args()
    text = run(args.products, args.rounds)
    print(text)
    write_section(args.report, "chat", "Chat turn latency (offline)", text)


if __name__ == "__main__":
    main()
