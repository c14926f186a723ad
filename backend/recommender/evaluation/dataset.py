"""Loader for any RecBole atomic dataset, as leave-one-out splits over ``ProductRecord``s.

Interactions come either pre-split (``X.valid.inter``/``X.test.inter``: one row per user with
the history, oldest first, and the held-out next item, as the UniSRec Amazon files) or as
RecBole's plain ``X.inter`` (``user_id``, ``item_id``, ``timestamp``…): then each user's
interactions are ordered by time, the last is the test target and the one before it the
validation target (users with fewer than 3 are left out).

Items become products so the strategies run on them unchanged. Their category and tags come
from whatever item features the dataset has:

- ``X.item`` (RecBole's item features): name from ``title``/``name``/``movie_title``; the
  category from ``categories``/``category`` (the most specific entry) or
  ``genre``/``class`` (the first); every other token and token_seq field (brand, genres…)
  becomes tags. token_seq values split on commas when they have any, else on spaces (a
  category path without commas is one entry).
- ``X.text`` (``item_id``, ``text``): the Amazon layout "title. category path. brand." is
  recognised by a category root shared by most items (e.g. "Industrial & Scientific") and
  split into name, category and brand; any other text is the item's name.

An item with neither falls into category "Other".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from backend.recommender.snapshot import ProductRecord

ROOT_CATEGORY = "Industrial & Scientific"
_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"and", "the", "for", "industrial", "scientific", "products", "supplies"}


@dataclass(frozen=True, slots=True)
class Split:
    """One leave-one-out split: per user, the history (oldest first) and the target."""

    name: str
    histories: list[list[int]]
    targets: list[int]


@dataclass(frozen=True, slots=True)
class LeaveOneOutData:
    name: str
    products: list[ProductRecord]
    valid: Split
    test: Split

    @property
    def n_items(self) -> int:
        return len(self.products)


def find_prefix(folder: Path) -> str:
    found = sorted(folder.glob("*.test.inter")) or sorted(folder.glob("*.inter"))
    if not found:
        raise FileNotFoundError(f"no *.inter file in {folder}")
    return found[0].name.removesuffix(".inter").removesuffix(".test")


def load(folder: Path) -> LeaveOneOutData:
    prefix = find_prefix(folder)
    if (folder / f"{prefix}.test.inter").exists():
        valid = _split(folder / f"{prefix}.valid.inter", "validation")
        test = _split(folder / f"{prefix}.test.inter", "test")
        index: dict[str, int] = {}
        mapping = folder / f"{prefix}.item2index"
        for line in mapping.read_text(encoding="utf-8").splitlines():
            if line.strip():
                key, value = line.split("\t")
                index[key] = int(value)
    else:
        index, valid, test = _leave_one_out(folder / f"{prefix}.inter")
    products: list[ProductRecord | None] = [None] * len(index)
    features = item_features(folder, prefix, list(index))
    for key, position in index.items():
        products[position] = features[key]
    if any(p is None for p in products):
        raise ValueError("item2index is not a dense 0..n-1 numbering")
    return LeaveOneOutData(
        name=prefix,
        products=[p for p in products if p is not None],
        valid=valid,
        test=test,
    )


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """(field names without their types, rows) of an atomic file with a typed header."""
    names, _types, rows = _typed_rows(path)
    return names, rows


def _typed_rows(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return [], [], []
    header = [field.partition(":") for field in lines[0].split("\t")]
    names, types = [h[0] for h in header], [h[2] for h in header]
    return names, types, [line.split("\t") for line in lines[1:] if line.strip()]


def _leave_one_out(path: Path) -> tuple[dict[str, int], Split, Split]:
    names, rows = _rows(path)
    try:
        user, item = names.index("user_id"), names.index("item_id")
    except ValueError:
        raise ValueError(f"{path.name} needs user_id and item_id columns") from None
    time_at = names.index("timestamp") if "timestamp" in names else None
    events: dict[str, list[tuple[float, int, str]]] = {}
    for n, row in enumerate(rows):
        when = float(row[time_at]) if time_at is not None and row[time_at] else 0.0
        events.setdefault(row[user], []).append((when, n, row[item]))  # ties: file order
    index: dict[str, int] = {}
    for row in rows:
        index.setdefault(row[item], len(index))
    splits: dict[str, tuple[list[list[int]], list[int]]] = {"valid": ([], []), "test": ([], [])}
    for seq in events.values():
        items = [index[token] for _, _, token in sorted(seq)]
        if len(items) < 3:
            continue
        splits["valid"][0].append(items[:-2][-MAX_HISTORY:])
        splits["valid"][1].append(items[-2])
        splits["test"][0].append(items[:-1][-MAX_HISTORY:])
        splits["test"][1].append(items[-1])
    return (
        index,
        Split("validation", *splits["valid"]),
        Split("test", *splits["test"]),
    )


MAX_HISTORY = 50  # as the pre-split files: the newest 50 items
NAME_FIELDS = ("title", "name", "movie_title", "item_name", "product_name")
PATH_FIELDS = ("categories", "category")  # general → specific: the last entry is the category
GENRE_FIELDS = ("genre", "genres", "class", "main_cat")  # unordered: the first is the category
_SKIP_FIELDS = {"item_id", "description", "text", "price", "rating", "timestamp", "imurl"}


def item_features(folder: Path, prefix: str, tokens: list[str]) -> dict[str, ProductRecord]:
    """A product per item token, from ``X.item`` when present, else from ``X.text``."""
    item_file, text_file = folder / f"{prefix}.item", folder / f"{prefix}.text"
    if item_file.exists():
        names, types, rows = _typed_rows(item_file)
        by_id = {row[names.index("item_id")]: row for row in rows}
        single = {n for n, t in zip(names, types, strict=True) if t == "token"}
        return {
            t: parse_features(t, dict(zip(names, by_id.get(t, []), strict=False)), single)
            for t in tokens
        }
    texts = dict.fromkeys(tokens, "")
    if text_file.exists():
        for line in text_file.read_text(encoding="utf-8").splitlines()[1:]:
            if "\t" in line:
                token, text = line.split("\t", 1)
                texts[token] = text
    root = amazon_root(list(texts.values()))
    return {t: parse_item(t, texts.get(t, ""), root) for t in tokens}


def _values(raw: str) -> list[str]:
    cleaned = raw.strip().strip("[]")
    parts = cleaned.split(",") if "," in cleaned else cleaned.split()
    return [p.strip().strip("'\"").strip() for p in parts if p.strip().strip("'\"").strip()]


def parse_features(
    token: str, fields: dict[str, str], single: set[str] | frozenset[str] = frozenset()
) -> ProductRecord:
    """A product from one ``.item`` row (field name → raw value); ``single``: the fields of
    type ``token``, one value each (a brand of two words stays one tag)."""
    name = next((fields[f].strip() for f in NAME_FIELDS if fields.get(f, "").strip()), token)
    category = "Other"
    for f in PATH_FIELDS + GENRE_FIELDS:
        raw = fields.get(f, "")
        whole = f in single or (f in PATH_FIELDS and "," not in raw)  # one path entry
        values = [raw.strip()] if whole and raw.strip() else _values(raw)
        if values:
            category = values[-1] if f in PATH_FIELDS else values[0]
            break
    tags: list[str] = []
    for f, raw in fields.items():
        if f in _SKIP_FIELDS or f in NAME_FIELDS or not raw.strip():
            continue
        tags += [raw.strip().lower()] if f in single else [v.lower() for v in _values(raw)]
    return ProductRecord(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"amazon:{token}"),
        name=name[:300],
        category=category[:120],
        price=Decimal("0"),
        quantity=1,
        tags=tuple(dict.fromkeys(t[:60] for t in tags if t))[:20],
    )


def amazon_root(texts: list[str]) -> str | None:
    """The category root most items share in the "title. category path. brand." layout.

    Takes each text's second-to-last ". " segment (the path) and returns the longest word
    prefix (up to 4 words) that more than half of the texts start their path with.
    """
    paths = []
    for text in texts:
        segments = text.strip().rstrip(". ").split(". ")
        if len(segments) >= 3:
            paths.append(segments[-2].split())
    best: str | None = None
    for words in range(1, 5):
        counts: dict[str, int] = {}
        for path in paths:
            if len(path) >= words:
                key = " ".join(path[:words])
                counts[key] = counts.get(key, 0) + 1
        top = max(counts.items(), key=lambda kv: kv[1], default=None)
        if top is None or top[1] * 2 <= len(texts):
            break
        best = top[0]
    return best


def parse_item(asin: str, text: str, root: str | None = ROOT_CATEGORY) -> ProductRecord:
    """'title. category path. brand.' → a product (the title itself may contain dots).

    Without the root in the text (or without a root at all) the whole text is the name.
    """
    text = text.strip()
    title, category, brand = text.rstrip(". ") or asin, "Other", ""
    marker = f". {root}"
    if root and marker in text:
        title, rest = text.split(marker, 1)
        rest = (root + rest).strip().rstrip(".").strip()
        path, _, brand = rest.rpartition(". ")
        category = path or rest
        if not path:
            brand = ""
    stop = _STOP | set(_WORD.findall((root or "").lower()))
    words = [w for w in _WORD.findall(category.lower()) if w not in stop and len(w) > 2]
    tags = tuple(dict.fromkeys(([brand.strip().lower()] if brand.strip() else []) + words))
    return ProductRecord(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"amazon:{asin}"),
        name=title.strip()[:300] or asin,
        category=category[:120],
        price=Decimal("0"),
        quantity=1,
        tags=tags,
    )


def _split(path: Path, name: str) -> Split:
    histories: list[list[int]] = []
    targets: list[int] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        _user, history, target = line.split("\t")
        histories.append([int(x) for x in history.split()])
        targets.append(int(target))
    return Split(name=name, histories=histories, targets=targets)
