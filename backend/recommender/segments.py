"""Shopper segments: K-means over per-user profile vectors (pure: no SQL, no HTTP).

A user's vector is their category affinities (action-weighted, normalised to shares), their
price level (mean log price of the items they interacted with) and their activity (log of
their interaction count), the last two min–max scaled over the users clustered and weighted
down so taste, not spend or volume, decides most segments. k comes from the settings or, by
default, the best silhouette over a small range. Everything is deterministic: a fixed
``random_state``, and segments numbered by size, then label.

Segments serve cold start ("shoppers like you": the nearest segment's most chosen items) and
the analytics page.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from backend.recommender.profile import DEFAULT_ACTION_WEIGHTS, InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot

FloatMatrix = npt.NDArray[np.float64]

PRICE_WEIGHT = 0.5
ACTIVITY_WEIGHT = 0.25
K_RANGE = (2, 8)
TOP_ITEMS = 50  # most chosen items kept per segment
SILHOUETTE_SAMPLE = 2000  # silhouette is O(n²): score a sample on large shops
PRICE_LEVELS = ("budget", "mid-range", "premium")
ACTIVITY_LEVELS = ("occasional", "regular", "frequent")

_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True, slots=True)
class UserActivity:
    """What one user did, reduced to what the segment features need."""

    user_id: uuid.UUID
    items: Mapping[uuid.UUID, float]  # product → action-weighted interaction count
    interactions: int  # every interaction, searches included
    searches: tuple[str, ...] = ()


def activity_of(
    user_id: uuid.UUID,
    records: Iterable[InteractionRecord],
    action_weights: Mapping[str, float] = DEFAULT_ACTION_WEIGHTS,
) -> UserActivity:
    items: dict[uuid.UUID, float] = {}
    searches: list[str] = []
    count = 0
    for record in records:
        count += 1
        if record.action == "search" and record.query:
            searches.append(record.query)
        weight = action_weights.get(record.action, 0.0)
        if record.product_id is not None and weight > 0:
            items[record.product_id] = items.get(record.product_id, 0.0) + weight
    return UserActivity(user_id, items, count, tuple(searches))


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """How raw profiles become vectors; fixed at fit time so new users land in the same space."""

    categories: tuple[str, ...]
    price_range: tuple[float, float]  # log1p(price): min, max over the users clustered
    activity_range: tuple[float, float]  # log1p(interactions): min, max
    price_weight: float = PRICE_WEIGHT
    activity_weight: float = ACTIVITY_WEIGHT

    def to_json(self) -> dict[str, object]:
        return {
            "categories": list(self.categories),
            "price_range": list(self.price_range),
            "activity_range": list(self.activity_range),
            "price_weight": self.price_weight,
            "activity_weight": self.activity_weight,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> FeatureSpec:
        def pair(value: object) -> tuple[float, float]:
            lo, hi = (float(v) for v in value)  # type: ignore[attr-defined]
            return lo, hi

        return cls(
            categories=tuple(str(c) for c in data["categories"]),  # type: ignore[attr-defined]
            price_range=pair(data["price_range"]),
            activity_range=pair(data["activity_range"]),
            price_weight=float(data.get("price_weight", PRICE_WEIGHT)),  # type: ignore[arg-type]
            activity_weight=float(data.get("activity_weight", ACTIVITY_WEIGHT)),  # type: ignore[arg-type]
        )

    def vector(self, raw: RawProfile) -> npt.NDArray[np.float64]:
        index = {c: i for i, c in enumerate(self.categories)}
        shares = np.zeros(len(self.categories))
        for category, weight in raw.categories.items():
            if category in index:
                shares[index[category]] += weight
        total = shares.sum()
        if total > 0:
            shares /= total
        price = 0.5 if raw.log_price is None else _scale(raw.log_price, self.price_range)
        activity = _scale(raw.log_activity, self.activity_range)
        return np.concatenate(
            [shares, [self.price_weight * price, self.activity_weight * activity]]
        )


def _scale(value: float, bounds: tuple[float, float]) -> float:
    lo, hi = bounds
    return 0.5 if hi <= lo else min(max((value - lo) / (hi - lo), 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class RawProfile:
    """A user's unscaled signal: category weights, mean log price, log activity."""

    categories: Mapping[str, float]
    log_price: float | None
    log_activity: float
    mean_price: float | None

    @property
    def has_signal(self) -> bool:
        return any(w > 0 for w in self.categories.values())


def raw_profile(activity: UserActivity, snapshot: CatalogSnapshot) -> RawProfile:
    """Category weights from items (and search words that are categories or tags), and the
    weighted mean log price of the items."""
    categories: dict[str, float] = defaultdict(float)
    log_prices, weights, prices = 0.0, 0.0, 0.0
    for product_id, weight in activity.items.items():
        i = snapshot.index.get(product_id)
        if i is None or weight <= 0:
            continue
        categories[snapshot.products[i].category] += weight
        price = float(snapshot.prices[i])
        log_prices += weight * math.log1p(price)
        prices += weight * price
        weights += weight
    search_weight = DEFAULT_ACTION_WEIGHTS["search"]
    by_word = {c.lower(): c for c in snapshot.category_names}
    for query in activity.searches:
        for word in set(_WORD.findall(query.lower())):
            if word in by_word:
                categories[by_word[word]] += search_weight
            postings = snapshot.tag_postings_for(word)
            if postings is not None and len(postings):  # a tag: its products' categories
                codes = np.bincount(snapshot.category_codes[postings])
                for code in np.flatnonzero(codes):
                    share = float(codes[code]) / len(postings)
                    categories[snapshot.category_names[code]] += search_weight * share
    return RawProfile(
        categories=dict(categories),
        log_price=log_prices / weights if weights > 0 else None,
        log_activity=math.log1p(activity.interactions),
        mean_price=prices / weights if weights > 0 else None,
    )


@dataclass(frozen=True, slots=True)
class Segment:
    segment: int
    label: str
    size: int
    top_categories: tuple[str, ...]
    avg_price: float  # members' mean price of the items they chose, averaged
    centroid: tuple[float, ...]
    popular: tuple[tuple[uuid.UUID, int], ...]  # product, members who chose it; most first


@dataclass(frozen=True, slots=True)
class SegmentModel:
    spec: FeatureSpec
    segments: tuple[Segment, ...]
    assignments: Mapping[uuid.UUID, int] = field(default_factory=dict)
    silhouette: float | None = None

    def nearest(self, vector: npt.NDArray[np.float64]) -> Segment:
        centroids = np.asarray([s.centroid for s in self.segments])
        return self.segments[int(np.argmin(((centroids - vector) ** 2).sum(axis=1)))]

    def assign(self, activity: UserActivity, snapshot: CatalogSnapshot) -> Segment | None:
        """The nearest segment from whatever signal the user has; None without any."""
        if not self.segments:
            return None
        raw = raw_profile(activity, snapshot)
        if not raw.has_signal:
            return None
        return self.nearest(self.spec.vector(raw))


def load_clustering() -> None:
    """Import the clustering library (about 2.5 s): at start-up in a process that will
    recompute segments between requests. Imported by the first recompute instead, it held the
    GIL for seconds while requests waited (open-loop p99 of 7.7 s at half the maximum rate)."""
    import sklearn.cluster  # noqa: F401
    import sklearn.metrics  # noqa: F401


def fit_segments(
    activities: Sequence[UserActivity],
    snapshot: CatalogSnapshot,
    *,
    k: int | None = None,
    k_range: tuple[int, int] = K_RANGE,
    min_interactions: int = 1,
    random_state: int = 0,
    top_items: int = TOP_ITEMS,
) -> SegmentModel | None:
    """Cluster the users with signal and at least ``min_interactions``; None if there are none.

    ``k`` None: the best silhouette for k in ``k_range`` (ties to the smaller k).
    """
    from sklearn.cluster import KMeans  # heavy import; only the batch job pays for it

    users = [a for a in sorted(activities, key=lambda a: a.user_id) if a.interactions]
    raws = [(a, raw_profile(a, snapshot)) for a in users if a.interactions >= min_interactions]
    raws = [(a, r) for a, r in raws if r.has_signal]
    if not raws:
        return None
    categories = tuple(sorted({c for _, r in raws for c, w in r.categories.items() if w > 0}))
    prices = [r.log_price for _, r in raws if r.log_price is not None]
    activity = [r.log_activity for _, r in raws]
    spec = FeatureSpec(
        categories=categories,
        price_range=(min(prices), max(prices)) if prices else (0.0, 0.0),
        activity_range=(min(activity), max(activity)),
    )
    matrix = np.vstack([spec.vector(r) for _, r in raws])
    distinct = len(np.unique(matrix.round(9), axis=0))
    # One thread: on matrices this small OpenMP's threads spin-wait more than they compute
    # (300 users, 2 loaded cores: 1.26 s wall with two threads, 0.30 s with one), and the
    # other core stays free for the requests of the process that recomputes.
    with threadpool_limits(limits=1):
        labels, silhouette = _cluster(matrix, k, k_range, distinct, random_state, KMeans)
    # Price level against the catalog's own price tertiles: "premium" is the shop's top third.
    price_cuts = np.quantile(np.log1p(snapshot.prices), [1 / 3, 2 / 3])
    return _describe(raws, matrix, labels, spec, silhouette, top_items, price_cuts)


def _cluster(
    matrix: FloatMatrix,
    k: int | None,
    k_range: tuple[int, int],
    distinct: int,
    random_state: int,
    kmeans: type,
) -> tuple[npt.NDArray[np.int64], float | None]:
    from sklearn.metrics import silhouette_score

    def fit(n: int) -> npt.NDArray[np.int64]:
        model = kmeans(n_clusters=n, n_init=5, random_state=random_state)
        return np.asarray(model.fit_predict(matrix), dtype=np.int64)

    def score(labels: npt.NDArray[np.int64]) -> float | None:
        if not 2 <= len(set(labels.tolist())) <= len(matrix) - 1:
            return None
        sample = min(len(matrix), SILHOUETTE_SAMPLE)
        return float(
            silhouette_score(matrix, labels, sample_size=sample, random_state=random_state)
        )

    if k is not None:
        labels = fit(max(1, min(k, distinct)))
        return labels, score(labels)
    lo, hi = k_range
    candidates = range(max(2, lo), min(hi, distinct - 1) + 1)
    best: tuple[float, npt.NDArray[np.int64]] | None = None
    for n in candidates:
        labels = fit(n)
        value = score(labels)
        if value is not None and (best is None or value > best[0]):
            best = (value, labels)
    if best is None:  # too few distinct users to compare: one segment
        return np.zeros(len(matrix), dtype=np.int64), None
    return best[1], best[0]


@dataclass(frozen=True, slots=True)
class _Draft:
    base: str  # "Audio · premium"
    busy: str  # activity level, to tell equal labels apart
    members: npt.NDArray[np.int64]
    top: tuple[str, ...]
    avg_price: float
    centroid: tuple[float, ...]
    popular: tuple[tuple[uuid.UUID, int], ...]


def _describe(
    raws: Sequence[tuple[UserActivity, RawProfile]],
    matrix: FloatMatrix,
    labels: npt.NDArray[np.int64],
    spec: FeatureSpec,
    silhouette: float | None,
    top_items: int,
    price_cuts: npt.NDArray[np.float64],
) -> SegmentModel:
    n = len(spec.categories)
    activity_cuts = np.quantile(matrix[:, n + 1], [1 / 3, 2 / 3])
    drafts = []
    for cluster in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == cluster)
        centroid = matrix[members].mean(axis=0)
        shares = centroid[:n]
        order = sorted(range(n), key=lambda c: (-shares[c], spec.categories[c]))
        top = [spec.categories[c] for c in order[:3] if shares[c] >= 0.1]
        top = top or [spec.categories[order[0]]]
        two = len(top) > 1 and shares[order[1]] >= 0.5 * shares[order[0]]
        log_prices = [v for j in members.tolist() if (v := raws[j][1].log_price) is not None]
        price = (
            _level(float(np.mean(log_prices)), price_cuts, PRICE_LEVELS)
            if log_prices
            else PRICE_LEVELS[1]
        )
        chosen: Counter[uuid.UUID] = Counter()
        for j in members.tolist():
            chosen.update(p for p, w in raws[j][0].items.items() if w > 0)
        mean_prices = [m for j in members.tolist() if (m := raws[j][1].mean_price) is not None]
        drafts.append(
            _Draft(
                base=f"{' & '.join(top[:2] if two else top[:1])} · {price}",
                busy=_level(float(centroid[n + 1]), activity_cuts, ACTIVITY_LEVELS),
                members=members,
                top=tuple(top),
                avg_price=round(float(np.mean(mean_prices)), 2) if mean_prices else 0.0,
                centroid=tuple(round(float(v), 6) for v in centroid),
                popular=tuple(
                    sorted(chosen.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top_items]
                ),
            )
        )
    drafts.sort(key=lambda d: (-len(d.members), d.base, d.centroid))
    names = _disambiguate([(d.base, d.busy) for d in drafts])
    segments = []
    assignments: dict[uuid.UUID, int] = {}
    for number, (draft, label) in enumerate(zip(drafts, names, strict=True)):
        for j in draft.members.tolist():
            assignments[raws[j][0].user_id] = number
        segments.append(
            Segment(
                segment=number,
                label=label,
                size=len(draft.members),
                top_categories=draft.top,
                avg_price=draft.avg_price,
                centroid=draft.centroid,
                popular=draft.popular,
            )
        )
    return SegmentModel(spec, tuple(segments), assignments, silhouette)


def _level(value: float, cuts: npt.NDArray[np.float64], names: tuple[str, str, str]) -> str:
    if value < cuts[0]:
        return names[0]
    return names[2] if value > cuts[1] else names[1]


def _disambiguate(labels: Sequence[tuple[str, str]]) -> list[str]:
    """Equal labels get the activity level, then a running number, in segment order."""
    counts = Counter(base for base, _ in labels)
    first = [base if counts[base] == 1 else f"{base} · {busy}" for base, busy in labels]
    seen: Counter[str] = Counter()
    out = []
    for label in first:
        seen[label] += 1
        out.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return out
