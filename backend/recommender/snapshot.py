"""The engine's in-memory view of the catalog: arrays and inverted indexes built once.

Requests never read the whole catalog from the database. A ``CatalogSnapshot`` is built from
product rows (and interaction counts) and is immutable except for the popularity counter,
which events bump in place. ``SnapshotManager`` swaps in a new snapshot when the database
reports a different catalog version.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ProductRecord:
    """What the engine and the explainer need to know about one product."""

    id: uuid.UUID
    name: str
    category: str
    price: Decimal
    quantity: int
    tags: tuple[str, ...]
    image_url: str | None = None
    description: str = ""
    # Where the product is offered (a store or pickup point); None: ships anywhere.
    latitude: float | None = None
    longitude: float | None = None


@dataclass
class CatalogSnapshot:
    """Immutable arrays over the catalog (popularity is the one mutable counter)."""

    products: list[ProductRecord]
    version: str
    index: dict[uuid.UUID, int]
    category_names: list[str]
    category_index: dict[str, int]
    category_codes: IntArray
    category_postings: list[IntArray]
    tag_names: list[str]
    tag_index: dict[str, int]
    tag_postings: list[IntArray]
    prices: FloatArray
    quantities: IntArray
    popularity: FloatArray
    # Unit-length text embeddings, one row per product (zero rows: not indexed yet), or None
    # when no vector index is attached. Strategies and search use it for exact dot products.
    embeddings: npt.NDArray[np.float32] | None = None
    # Product coordinates in degrees (NaN: none), for the optional location boost.
    latitudes: FloatArray | None = None
    longitudes: FloatArray | None = None
    # Structures derived from the arrays above, built once per snapshot by whoever needs them
    # (e.g. the reduced embedding matrix of ``strategies.sources``); dies with the snapshot.
    derived: dict[str, object] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(
        cls,
        products: Iterable[ProductRecord],
        popularity: Mapping[uuid.UUID, float] | None = None,
        version: str = "0",
    ) -> CatalogSnapshot:
        items = list(products)
        popularity = popularity or {}
        category_names = sorted({p.category for p in items})
        category_of = {name: i for i, name in enumerate(category_names)}
        tag_names = sorted({t for p in items for t in p.tags})
        tag_index = {name: i for i, name in enumerate(tag_names)}

        codes = np.fromiter((category_of[p.category] for p in items), np.int64, len(items))
        tag_lists: list[list[int]] = [[] for _ in tag_names]
        for i, product in enumerate(items):
            for tag in set(product.tags):
                tag_lists[tag_index[tag]].append(i)

        return cls(
            products=items,
            version=version,
            index={p.id: i for i, p in enumerate(items)},
            category_names=category_names,
            category_index=category_of,
            category_codes=codes,
            category_postings=[np.flatnonzero(codes == c) for c in range(len(category_names))],
            tag_names=tag_names,
            tag_index=tag_index,
            tag_postings=[np.asarray(ids, dtype=np.int64) for ids in tag_lists],
            prices=np.fromiter((float(p.price) for p in items), np.float64, len(items)),
            quantities=np.fromiter((p.quantity for p in items), np.int64, len(items)),
            popularity=np.fromiter(
                (float(popularity.get(p.id, 0.0)) for p in items), np.float64, len(items)
            ),
            latitudes=_coordinates(p.latitude for p in items),
            longitudes=_coordinates(p.longitude for p in items),
        )

    def __len__(self) -> int:
        return len(self.products)

    def attach_embeddings(self, ids: list[uuid.UUID], vectors: npt.NDArray[np.float32]) -> int:
        """Fill ``embeddings`` from (id, vector) pairs in any order; returns how many matched."""
        if len(ids) == 0:
            return 0
        matrix = np.zeros((len(self), vectors.shape[1]), dtype=np.float32)
        pos = np.fromiter((self.index.get(p, -1) for p in ids), np.int64, len(ids))
        hit = pos >= 0
        matrix[pos[hit]] = vectors[hit]
        self.embeddings = matrix
        return int(hit.sum())

    def category_postings_for(self, name: str) -> IntArray | None:
        code = self.category_index.get(name)
        return None if code is None else self.category_postings[code]

    def tag_postings_for(self, name: str) -> IntArray | None:
        i = self.tag_index.get(name)
        return None if i is None else self.tag_postings[i]

    def record_interaction(self, product_id: uuid.UUID, amount: float = 1.0) -> None:
        """Bump a product's popularity so cold-start answers follow live traffic."""
        i = self.index.get(product_id)
        if i is not None:
            with self._lock:
                self.popularity[i] += amount


def _coordinates(values: Iterable[float | None]) -> FloatArray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


VersionFn = Callable[[], str]
LoadFn = Callable[[], CatalogSnapshot]


class SnapshotManager:
    """Holds the current snapshot; rebuilds it when the catalog version changes.

    ``refresh_if_stale`` is cheap (one aggregate query) and is called from a background
    thread, so a rebuild never happens inside a request unless none exists yet.
    """

    def __init__(self, load: LoadFn, version: VersionFn) -> None:
        self._load = load
        self._version = version
        self._current: CatalogSnapshot | None = None
        self._lock = threading.Lock()

    def get(self) -> CatalogSnapshot:
        current = self._current
        if current is None:
            with self._lock:
                if self._current is None:
                    self._current = self._load()
                current = self._current
        return current

    def refresh_if_stale(self) -> bool:
        version = self._version()
        current = self._current
        if current is not None and current.version == version:
            return False
        fresh = self._load()
        with self._lock:
            self._current = fresh
        return True

    def invalidate(self) -> None:
        """Force a rebuild on next access (after an in-process catalog write)."""
        with self._lock:
            self._current = None

    @property
    def loaded(self) -> CatalogSnapshot | None:
        return self._current
