"""Any RecBole atomic dataset: plain .inter split by time, categories and tags from .item or
.text, the Amazon layout recognised by its shared root."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from backend.recommender.evaluation.amazon_atomic import write_atomic
from backend.recommender.evaluation.dataset import amazon_root, load, parse_features, parse_item

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def write(folder: Path, name: str, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, body in files.items():
        (folder / f"{name}.{suffix}").write_text(body, encoding="utf-8")
    return folder


def test_plain_inter_is_split_leave_one_out_by_time(tmp_path):
    rows = [
        ("u1", "m3", 30), ("u1", "m1", 10), ("u1", "m2", 20), ("u1", "m4", 40),
        ("u2", "m2", 5), ("u2", "m1", 6), ("u2", "m3", 7),
        ("u3", "m1", 1), ("u3", "m2", 2),  # too short for a validation target: left out
    ]  # fmt: skip
    body = INTER + "".join(f"{u}\t{i}\t5\t{t}\n" for u, i, t in rows)
    data = load(write(tmp_path / "ml", "ml", {"inter": body}))
    index = {p.name: k for k, p in enumerate(data.products)}  # no features: name = token
    m = [index[f"m{k}"] for k in range(1, 5)]
    assert data.test.histories == [[m[0], m[1], m[2]], [m[1], m[0]]]
    assert data.test.targets == [m[3], m[2]]
    assert data.valid.histories == [[m[0], m[1]], [m[1]]] and data.valid.targets == [m[2], m[0]]
    assert {p.category for p in data.products} == {"Other"}


def test_item_file_gives_categories_and_tags(tmp_path):
    item = (
        "item_id:token\tmovie_title:token_seq\tclass:token_seq\tdirector:token\n"
        "m1\tHeat\tCrime Thriller\tMichael Mann\n"
        "m2\tAlien\tHorror Sci-Fi\tRidley Scott\n"
    )
    body = INTER + "u1\tm1\t5\t1\nu1\tm2\t5\t2\nu1\tm1\t5\t3\n"
    data = load(write(tmp_path / "movies", "movies", {"inter": body, "item": item}))
    heat = next(p for p in data.products if p.name == "Heat")
    assert heat.category == "Crime"  # genres are unordered: the first one
    assert heat.tags == ("crime", "thriller", "michael mann")  # a token field stays one tag


def test_category_paths_take_the_most_specific_entry():
    p = parse_features(
        "B1",
        {"title": "Drill", "categories": "Tools, Power Tools, Drills", "brand": "Acme"},
        {"brand"},
    )
    assert (p.name, p.category) == ("Drill", "Drills")
    assert p.tags == ("tools", "power tools", "drills", "acme")
    one = parse_features("B2", {"title": "Card", "categories": "Gift Cards"})
    assert one.category == "Gift Cards"


def test_amazon_text_layout_found_from_the_shared_root():
    texts = [
        "Red Drill. Tools & Home Power Tools Drills. Acme. ",
        "Blue Saw. v2. Tools & Home Power Tools Saws. Bosch. ",
        "Glue. Tools & Home Adhesives. 3M. ",
        "A note without any layout",
    ]
    root = amazon_root(texts)
    assert root == "Tools & Home"
    saw = parse_item("B2", texts[1], root)
    assert (saw.name, saw.category) == ("Blue Saw. v2", "Tools & Home Power Tools Saws")
    assert saw.tags[0] == "bosch" and "saws" in saw.tags and "tools" not in saw.tags[:1]
    odd = parse_item("B4", texts[3], root)
    assert (odd.name, odd.category) == ("A note without any layout", "Other")
    assert amazon_root(["just words", "no layout here"]) is None


def test_non_amazon_text_names_the_items(tmp_path):
    text = "item_id:token\ttext:token_seq\nm1\tA quiet film about trains\n"
    body = INTER + "u1\tm1\t5\t1\nu1\tm2\t5\t2\nu1\tm1\t5\t3\n"
    data = load(write(tmp_path / "t", "t", {"inter": body, "text": text}))
    assert data.products[0].name == "A quiet film about trains"


def test_amazon_reviews_and_metadata_become_atomic_files(tmp_path):
    def gz(path: Path, records: list[object]) -> Path:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
        return path

    reviews = gz(
        tmp_path / "r.json.gz",
        [
            {"reviewerID": "U1", "asin": "A", "overall": 5.0, "unixReviewTime": 3},
            {"reviewerID": "U1", "asin": "B", "overall": 4.0, "unixReviewTime": 1},
            {"reviewerID": "U1", "asin": "A", "overall": 4.0, "unixReviewTime": 2},
            {"reviewerID": "U2", "asin": "B"},  # no time: skipped
        ],
    )
    meta = gz(
        tmp_path / "m.json.gz",
        [
            {"asin": "A", "title": "Café <b>Card</b>\tx", "category": ["Gift Cards", "Food"],
             "brand": "Java Co"},
            {"asin": "B", "title": "Book Card", "category": [], "brand": ""},
            {"asin": "Z", "title": "Never reviewed"},
        ],
    )  # fmt: skip
    report = write_atomic(reviews, meta, tmp_path / "Gifts")
    assert sum(report.skipped.values()) == 3  # two bad lines, one review without a time
    data = load(tmp_path / "Gifts")
    by_name = {p.name: p for p in data.products}
    assert set(by_name) == {"Café Card x", "Book Card"}
    assert by_name["Café Card x"].category == "Food"
    assert by_name["Café Card x"].tags == ("gift cards", "food", "java co")
    assert by_name["Book Card"].category == "Other"
    a, b = (data.products.index(by_name[n]) for n in ("Café Card x", "Book Card"))
    assert data.test.histories == [[b, a]] and data.test.targets == [a]
