"""Loader for the RecBole atomic files of the Amazon 2018 datasets (``Scientific.*``).

Each ``.valid.inter``/``.test.inter`` row is one user's history (oldest first) and the
held-out next item. Items become ``ProductRecord``s so the strategies run on them unchanged:
name = title, category = the category path, tags = brand and the path's words.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from backend.recommender.catalog import ProductRecord

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
    found = sorted(folder.glob("*.test.inter"))
    if not found:
        raise FileNotFoundError(f"no *.test.inter file in {folder}")
    return found[0].name.removesuffix(".test.inter")


def load(folder: Path) -> LeaveOneOutData:
    prefix = find_prefix(folder)
    index: dict[str, int] = {}
    for line in (folder / f"{prefix}.item2index").read_text(encoding="utf-8").splitlines():
        if line.strip():
            key, value = line.split("\t")
            index[key] = int(value)
    texts = {asin: "" for asin in index}
    text_file = folder / f"{prefix}.text"
    for line in text_file.read_text(encoding="utf-8").splitlines()[1:]:
        if "\t" in line:
            asin, text = line.split("\t", 1)
            texts[asin] = text
    products: list[ProductRecord | None] = [None] * len(index)
    for key, position in index.items():
        products[position] = parse_item(key, texts.get(key, ""))
    if any(p is None for p in products):
        raise ValueError("item2index is not a dense 0..n-1 numbering")
    return LeaveOneOutData(
        name=prefix,
        products=[p for p in products if p is not None],
        valid=_split(folder / f"{prefix}.valid.inter", "validation"),
        test=_split(folder / f"{prefix}.test.inter", "test"),
    )


def parse_item(asin: str, text: str) -> ProductRecord:
    """'title. category path. brand.' → a product (the title itself may contain dots)."""
    text = text.strip()
    title, category, brand = text.rstrip(". ") or asin, "Other", ""
    marker = f". {ROOT_CATEGORY}"
    if marker in text:
        title, rest = text.split(marker, 1)
        rest = (ROOT_CATEGORY + rest).strip().rstrip(".").strip()
        path, _, brand = rest.rpartition(". ")
        category = path or rest
        if not path:
            brand = ""
    words = [w for w in _WORD.findall(category.lower()) if w not in _STOP and len(w) > 2]
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
