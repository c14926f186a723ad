"""Engine recommend latency at 1k / 10k / 100k products, against the naive approach.

The naive approach is the one our original spec describes: on every request, load all
products from the database, count the user's top categories and tags, score every product
in a Python loop, sort. The engine keeps the catalog in memory as arrays and inverted
indexes (``CatalogSnapshot``) and scores with numpy.

Run: ``make bench`` (or ``python -m bench.engine_bench --sizes 1000 10000 100000``).
Writes its section of ``bench/REPORT.md``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, select

from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.db.models import Interaction, Product, User
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot, ProductRecord
from backend.recommender.strategies import (
    RecommendRequest,
    RulesStrategy,
    Strategy,
    WeightedStrategy,
)
from bench.report import write_section

NOW = datetime(2026, 11, 1, tzinfo=UTC)
ACTIONS = ["view"] * 6 + ["click"] * 3 + ["add_to_cart", "wishlist", "purchase"]


@dataclass
class Dataset:
    products: list[ProductRecord]
    users: list[uuid.UUID]
    history: dict[uuid.UUID, list[InteractionRecord]]


def generate(n_products: int, seed: int = 7) -> Dataset:
    """A catalog with Zipf-like tag and item popularity; users ∝ products, ~20 events each."""
    rng = np.random.default_rng(seed)
    n_categories = max(10, n_products // 500)
    n_tags = max(50, n_products // 20)
    tag_weights = 1.0 / np.arange(1, n_tags + 1) ** 0.8
    tag_weights /= tag_weights.sum()
    products = []
    for i in range(n_products):
        k = int(rng.integers(3, 9))
        tags = tuple(f"tag{t}" for t in rng.choice(n_tags, size=k, replace=False, p=tag_weights))
        products.append(
            ProductRecord(
                id=uuid.UUID(int=i + 1),
                name=f"Product {i}",
                category=f"Category {int(rng.integers(n_categories))}",
                price=Decimal(f"{rng.uniform(2, 500):.2f}"),
                quantity=int(rng.integers(0, 50)),
                tags=tags,
            )
        )
    item_weights = 1.0 / np.arange(1, n_products + 1) ** 0.9
    item_weights /= item_weights.sum()
    n_users = max(50, n_products // 10)
    users = [uuid.UUID(int=10**9 + u) for u in range(n_users)]
    history: dict[uuid.UUID, list[InteractionRecord]] = {}
    for user in users:
        k = int(rng.integers(5, 40))
        picks = rng.choice(n_products, size=k, p=item_weights)
        history[user] = [
            InteractionRecord(
                action=ACTIONS[int(rng.integers(len(ACTIONS)))],
                product_id=products[int(p)].id,
                created_at=NOW - timedelta(days=float(rng.uniform(0, 120))),
            )
            for p in picks
        ]
    return Dataset(products, users, history)


def fill_database(url: str, data: Dataset) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Product),
            [
                {
                    "id": p.id, "name": p.name, "description": "", "category": p.category,
                    "price": p.price, "quantity": p.quantity, "tags": list(p.tags),
                    "created_at": NOW, "updated_at": NOW,
                }
                for p in data.products
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(User),
            [
                {"id": u, "username": f"u{u.int}", "email": f"u{u.int}@example.com",
                 "is_guest": False, "created_at": NOW}
                for u in data.users
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(Interaction),
            [
                {"id": uuid.uuid4(), "user_id": u, "product_id": e.product_id,
                 "action": e.action, "created_at": e.created_at}
                for u, events in data.history.items()
                for e in events
            ],
        )  # fmt: skip
    engine.dispose()


def naive_recommend(session: Session, user_id: uuid.UUID, top_n: int) -> list[uuid.UUID]:
    """The spec's approach, verbatim: reload everything, loop in Python."""
    products = session.exec(select(Product)).all()
    events = session.exec(select(Interaction).where(Interaction.user_id == user_id)).all()
    by_id = {p.id: p for p in products}
    categories: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    seen = set()
    for e in events:
        p = by_id.get(e.product_id) if e.product_id else None
        if p is not None:
            seen.add(p.id)
            categories[p.category] += 1
            tags.update(p.tags)
    top_categories = {c for c, _ in categories.most_common(3)}
    top_tags = {t for t, _ in tags.most_common(5)}
    scored = []
    for p in products:
        if p.id in seen:
            continue
        score = (10 if p.category in top_categories else 0) + 3 * sum(
            1 for t in p.tags if t in top_tags
        )
        scored.append((score, p.id))
    scored.sort(key=lambda s: -s[0])
    return [pid for _, pid in scored[:top_n]]


def timed(calls: Iterable[Callable[[], object]]) -> list[float]:
    """Milliseconds taken by each call."""
    out = []
    for call in calls:
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def time_strategy(
    strategy: Strategy, snapshot: CatalogSnapshot, data: Dataset, users: list[uuid.UUID], top_n: int
) -> tuple[float, float]:
    requests = [RecommendRequest(interactions=data.history[u], top_n=top_n, now=NOW) for u in users]
    for request in requests[:5]:  # warm-up
        strategy.recommend(snapshot, request)
    return summarize(timed((lambda r=r: strategy.recommend(snapshot, r)) for r in requests))


def summarize(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered), p99


def run(sizes: list[int], requests: int, naive_requests: int, top_n: int) -> str:
    rows = []
    for n in sizes:
        data = generate(n)
        started = time.perf_counter()
        counts = Counter(e.product_id for h in data.history.values() for e in h)
        snapshot = CatalogSnapshot.build(data.products, counts, version="bench")
        build_ms = (time.perf_counter() - started) * 1000
        rng = np.random.default_rng(1)
        sample = [data.users[int(i)] for i in rng.integers(len(data.users), size=requests)]
        strategies = {"rules": RulesStrategy(), "weighted": WeightedStrategy()}
        results = {
            name: time_strategy(strategy, snapshot, data, sample, top_n)
            for name, strategy in strategies.items()
        }

        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'naive.db'}"
            fill_database(url, data)
            engine = make_engine(url)
            with Session(engine) as session:
                naive_recommend(session, sample[0], top_n)  # warm-up
                naive = summarize(
                    timed(
                        (lambda u=u: naive_recommend(session, u, top_n))
                        for u in sample[:naive_requests]
                    )
                )
            engine.dispose()
        total_events = sum(len(h) for h in data.history.values())
        rows.append((n, len(data.users), total_events, build_ms, results, naive))

    lines = [
        f"Command: `python -m bench.engine_bench --sizes {' '.join(map(str, sizes))} "
        f"--requests {requests} --naive-requests {naive_requests}` "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.python_version()}, "
        f"{platform.machine()}, top_n={top_n}).",
        "",
        "Engine-only: profile + scoring + top-N + evidence over the in-memory snapshot; the "
        "user's history is passed in. Naive: the spec's loop, reloading all products and the "
        "user's interactions from SQLite on every request. Milliseconds; median / p99.",
        "",
        "| products | users | interactions | snapshot build | rules | weighted | naive loop |"
        " rules speed-up (median) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, users_n, events_n, build_ms, results, naive in rows:
        rules, weighted = results["rules"], results["weighted"]
        lines.append(
            f"| {n:,} | {users_n:,} | {events_n:,} | {build_ms:,.0f} ms "
            f"| {rules[0]:.2f} / {rules[1]:.2f} | {weighted[0]:.2f} / {weighted[1]:.2f} "
            f"| {naive[0]:,.1f} / {naive[1]:,.1f} | {naive[0] / rules[0]:,.0f}× |"
        )
    largest = rows[-1]
    lines += [
        "",
        f"Targets at {largest[0]:,} products: p99 ≤ 20 ms (rules "
        f"{largest[4]['rules'][1]:.2f} ms, weighted {largest[4]['weighted'][1]:.2f} ms) and "
        f"≥ 50× faster than the naive loop (median ratio "
        f"{largest[5][0] / largest[4]['rules'][0]:,.0f}× for rules, "
        f"{largest[5][0] / largest[4]['weighted'][0]:,.0f}× for weighted).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--naive-requests", type=int, default=10)
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--report", type=Path, default=Path(__file__).with_name("REPORT.md"))
    args = parser.parse_args()
    text = run(args.sizes, args.requests, args.naive_requests, args.top_n)
    write_section(args.report, "engine", "Engine recommend latency", text)
    print(text)


if __name__ == "__main__":
    main()
