"""The catalog's product names as the check finds them in free text."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from backend.recommender.snapshot import CatalogSnapshot, ProductRecord
from backend.text import stems

Phrase = tuple[str, ...]


@lru_cache(maxsize=65_536)
def phrase(text: str) -> Phrase:
    """A name as a tuple of stems, "&"/"and" dropped so "Toys & Games" matches either way
    (whole hyphenated words only: a name is matched as a run of words)."""
    return tuple(s for s in stems(text, parts=False) if s != "and")


@dataclass(frozen=True)
class CheckVocabulary:
    """Every catalog product name (as stems → display name): naming one that no cited fact
    or the product itself backs is naming another product."""

    names: Mapping[Phrase, str]
    max_len: int = 1
    starts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, products: Iterable[ProductRecord]) -> CheckVocabulary:
        names: dict[Phrase, str] = {}
        for product in products:
            key = phrase(product.name)
            if key:
                names[key] = product.name
        starts: dict[str, int] = {}
        for key in names:
            starts[key[0]] = max(starts.get(key[0], 0), len(key))
        return cls(names=names, max_len=max((len(k) for k in names), default=1), starts=starts)


class VocabularyCache:
    """The vocabulary of the catalog snapshot in use, rebuilt only when the snapshot changes."""

    def __init__(self, snapshot: Callable[[], CatalogSnapshot]) -> None:
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._built_for: CatalogSnapshot | None = None
        self._vocabulary = CheckVocabulary.build(())

    def __call__(self) -> CheckVocabulary:
        snapshot = self._snapshot()
        with self._lock:
            if snapshot is not self._built_for:
                self._vocabulary = CheckVocabulary.build(snapshot.products)
                self._built_for = snapshot
            return self._vocabulary


__all__ = ["CheckVocabulary", "Phrase", "VocabularyCache", "phrase"]
