"""Importer for the Amazon Review Data (2018) format: metadata and 5-core reviews, gzipped.

Real data is messy, so every record either becomes a row or is counted under the reason it
was skipped; nothing raises on a bad line. Products: title (HTML stripped, cut to 300 chars),
the most specific distinct category, brand and categories as tags, the first image, the price
("$25.00", a range takes its low end). A product without a readable price is still imported,
at 0.00 and out of stock, so it can be searched but not sold until the shop sets a price.
Reviews become "purchase" interactions at the review's time, once per (reviewer, product);
re-running adds nothing (ids derive from ASINs and reviewer ids, events carry an event_id).
"""

from __future__ import annotations

import gzip
import html
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from backend.db.engine import session_scope
from backend.db.models import Interaction, Product, User

_TAG = re.compile(r"<[^>]+>")
_PRICE = re.compile(r"\$\s*([0-9][0-9,]*(?:\.[0-9]{1,2})?)")
_SPACE = re.compile(r"\s+")
BATCH = 1000


@dataclass
class ImportReport:
    products: int = 0
    users: int = 0
    interactions: int = 0
    no_price: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        lines = [
            f"imported {self.products} products ({self.no_price} without a readable price: "
            f"at 0.00, out of stock), {self.users} users, {self.interactions} interactions"
        ]
        if self.skipped:
            lines.append("skipped:")
            lines += [f"  {n} × {reason}" for reason, n in self.skipped.most_common()]
        else:
            lines.append("skipped: nothing")
        return "\n".join(lines)


def product_id(asin: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"amazon:{asin}")


def user_id(reviewer: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"amazon-reviewer:{reviewer}")


def clean_text(value: Any, limit: int | None = None) -> str:
    """HTML fragments and entities out, whitespace collapsed."""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value if v)
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", str(value or "")))).strip()
    return text[:limit].rstrip() if limit else text


def parse_price(value: Any) -> Decimal | None:
    match = _PRICE.search(str(value or ""))
    if match is None:
        return None
    try:
        price = Decimal(match.group(1).replace(",", ""))
    except InvalidOperation:
        return None
    return price if Decimal(0) <= price <= Decimal(1_000_000) else None


def _records(path: Path, report: ImportReport, kind: str) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                report.skipped[f"{kind}: line is not valid JSON"] += 1
                continue
            if isinstance(record, dict):
                yield record
            else:
                report.skipped[f"{kind}: line is not an object"] += 1


def product_from(record: dict[str, Any], report: ImportReport) -> Product | None:
    """A product row, or None (counted in ``report.skipped``); no price → 0.00, none in stock."""
    asin = str(record.get("asin") or "").strip()
    if not asin:
        report.skipped["product: no asin"] += 1
        return None
    title = clean_text(record.get("title"), 300)
    if not title:
        report.skipped["product: no title"] += 1
        return None
    categories = list(
        dict.fromkeys(clean_text(c, 120) for c in record.get("category") or [] if clean_text(c))
    )
    category = categories[-1] if categories else clean_text(record.get("main_cat"), 120)
    brand = clean_text(record.get("brand"), 60)
    tags = list(dict.fromkeys(t.lower() for t in [*categories, brand] if t))[:20]
    price = parse_price(record.get("price"))
    images = [u for u in record.get("imageURLHighRes") or record.get("imageURL") or [] if u]
    return Product(
        id=product_id(asin),
        name=title,
        description=clean_text(record.get("description"), 5000),
        category=category or "Uncategorised",
        price=price if price is not None else Decimal("0.00"),
        quantity=10 if price is not None else 0,
        image_url=str(images[0])[:1000] if images else None,
        tags=tags,
    )


def import_amazon(engine: Engine, *, meta: Path, reviews: Path | None = None) -> ImportReport:
    report = ImportReport()
    products: dict[uuid.UUID, Product] = {}
    for record in _records(meta, report, "product"):
        product = product_from(record, report)
        if product is None:
            continue
        if product.id in products:
            report.skipped["product: duplicate asin in the file"] += 1
            continue
        products[product.id] = product
    with Session(engine) as session:
        existing = set(session.exec(select(Product.id)).all())
    fresh = [p for pid, p in products.items() if pid not in existing]
    report.skipped["product: already imported"] += len(products) - len(fresh)
    for start in range(0, len(fresh), BATCH):
        with session_scope(engine) as session:
            session.add_all(fresh[start : start + BATCH])
    report.products = len(fresh)
    report.no_price = sum(1 for p in fresh if p.quantity == 0 and p.price == 0)
    known = existing | set(products)
    if reviews is not None:
        _import_reviews(engine, reviews, known, report)
    report.skipped = Counter({k: v for k, v in report.skipped.items() if v})
    return report


def _import_reviews(
    engine: Engine, path: Path, known: set[uuid.UUID], report: ImportReport
) -> None:
    users: dict[uuid.UUID, User] = {}
    events: dict[str, Interaction] = {}
    for record in _records(path, report, "review"):
        reviewer = str(record.get("reviewerID") or "").strip()
        asin = str(record.get("asin") or "").strip()
        if not reviewer or not asin:
            report.skipped["review: no reviewer or asin"] += 1
            continue
        pid = product_id(asin)
        if pid not in known:
            report.skipped["review: product not in the metadata"] += 1
            continue
        try:
            at = datetime.fromtimestamp(int(record["unixReviewTime"]), tz=UTC)
        except (KeyError, TypeError, ValueError, OverflowError):
            report.skipped["review: no readable time"] += 1
            continue
        event_id = f"amazon:{reviewer}:{asin}"[:128]
        if event_id in events:
            report.skipped["review: same reviewer and product again"] += 1
            continue
        uid = user_id(reviewer)
        if uid not in users:
            name = clean_text(record.get("reviewerName"), 200) or None
            handle = f"amz-{reviewer.lower()}"[:80]
            users[uid] = User(
                id=uid, username=handle, email=f"{handle}@reviewers.invalid", full_name=name
            )
        events[event_id] = Interaction(
            user_id=uid, product_id=pid, action="purchase", event_id=event_id, created_at=at
        )
    with Session(engine) as session:
        have_users = set(session.exec(select(User.id)).all())
        have_events = set(
            session.exec(
                select(Interaction.event_id).where(col(Interaction.event_id).like("amazon:%"))
            ).all()
        )
    new_users = [u for uid, u in users.items() if uid not in have_users]
    new_events = [e for eid, e in events.items() if eid not in have_events]
    report.skipped["review: already imported"] += len(events) - len(new_events)
    with session_scope(engine) as session:
        session.add_all(new_users)
    for start in range(0, len(new_events), BATCH):
        with session_scope(engine) as session:
            session.add_all(new_events[start : start + BATCH])
    report.users = len(new_users)
    report.interactions = len(new_events)
