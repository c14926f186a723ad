"""The Amazon 2018 importer: messy lines by hand, then the real Gift Cards files."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from backend.db.models import Interaction, Product, User
from backend.importers.amazon import clean_text, import_amazon, parse_price, product_id

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "amazon-gift-cards"


def gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_price_and_text_cleaning():
    assert parse_price("$25.00") == Decimal("25.00")
    assert parse_price("$1,250.00") == Decimal("1250.00")
    assert parse_price("$10.00 - $50.00") == Decimal("10.00")
    assert parse_price("") is None and parse_price(".a-box-inner{color:#fff}") is None
    assert clean_text(['<div class="x">Hi&amp;bye<br/>', " there "]) == "Hi&bye there"


def test_messy_lines_are_counted_not_fatal(tmp_path, db):
    meta = gz(
        tmp_path / "meta.json.gz",
        [
            json.dumps({"asin": "A1", "title": "<b>Card</b> &amp; co", "price": "$25.00",
                        "category": ["Gift Cards", "Gift Cards", "Restaurants"], "brand": "Co",
                        "description": ["<p>Nice</p>"], "imageURL": ["http://i/1.jpg"]}),
            json.dumps({"asin": "A2", "title": "No price card", "price": "",
                        "category": [], "main_cat": "Gift Cards"}),
            json.dumps({"asin": "A3", "title": ""}),
            json.dumps({"asin": "A1", "title": "Duplicate"}),
            "{not json",
            "[1, 2]",
        ],
    )  # fmt: skip
    reviews = gz(
        tmp_path / "reviews.json.gz",
        [
            json.dumps({"reviewerID": "R1", "asin": "A1", "unixReviewTime": 1500000000}),
            json.dumps({"reviewerID": "R1", "asin": "A1", "unixReviewTime": 1500000001}),
            json.dumps({"reviewerID": "R2", "asin": "ZZZ", "unixReviewTime": 1500000000}),
            json.dumps({"reviewerID": "R2", "asin": "A2", "unixReviewTime": "soon"}),
            json.dumps({"reviewerID": "R3", "asin": "A2", "unixReviewTime": 1500000000}),
        ],
    )
    report = import_amazon(db, meta=meta, reviews=reviews)
    assert (report.products, report.no_price, report.users, report.interactions) == (2, 1, 2, 2)
    assert report.skipped == {
        "product: no title": 1,
        "product: duplicate asin in the file": 1,
        "product: line is not valid JSON": 1,
        "product: line is not an object": 1,
        "review: same reviewer and product again": 1,
        "review: product not in the metadata": 1,
        "review: no readable time": 1,
    }
    with Session(db) as session:
        card = session.get(Product, product_id("A1"))
        assert card.name == "Card & co" and card.category == "Restaurants"
        assert card.tags == ["gift cards", "restaurants", "co"] and card.price == Decimal("25.00")
        assert card.description == "Nice" and card.image_url == "http://i/1.jpg"
        unpriced = session.get(Product, product_id("A2"))
        assert unpriced.quantity == 0 and unpriced.category == "Gift Cards"
    again = import_amazon(db, meta=meta, reviews=reviews)
    assert (again.products, again.users, again.interactions) == (0, 0, 0)
    assert again.skipped["product: already imported"] == 2
    assert "skipped:" in again.summary()


@pytest.mark.slow
def test_real_gift_cards_dataset(tmp_path):
    if not SHARED.is_dir():
        pytest.skip(f"shared dataset folder {SHARED} is absent on this machine")
    from backend.db.engine import make_engine
    from backend.db.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'import.db'}")
    upgrade(engine)
    report = import_amazon(
        engine, meta=SHARED / "meta_Gift_Cards.json.gz", reviews=SHARED / "Gift_Cards_5.json.gz"
    )
    assert (
        report.products
        + sum(n for reason, n in report.skipped.items() if reason.startswith("product:"))
        == 1547
    )
    assert report.products > 1400 and report.no_price > 1000
    assert report.interactions > 2500 and report.users == 458
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Product)).one() == report.products
        assert session.exec(select(func.count()).select_from(User)).one() == 458
        n = session.exec(select(func.count()).select_from(Interaction)).one()
        assert n == report.interactions
        names = session.exec(select(Product.name)).all()
        assert not any("<" in name and ">" in name for name in names)
    engine.dispose()
