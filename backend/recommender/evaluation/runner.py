"""Leave-one-out evaluation of every strategy, through the same ``Strategy`` contract.

Protocol (the dataset's README): models learn from each user's split history only; every
item is ranked except that history; one held-out target per user. Hyper-parameters and the
hybrid's weights are chosen on the validation targets only, then frozen for the test split.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import pickle
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from backend.recommender import sequential
from backend.recommender.cf import (
    CFParams,
    ModelStore,
    ease_weights,
    fit_als,
    train,
    user_items_matrix,
)
from backend.recommender.embedder import Embedder, Vectors, product_text
from backend.recommender.evaluation.dataset import LeaveOneOutData, Split, load
from backend.recommender.evaluation.metrics import Metrics, rank_of, summarise
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies import (
    BlendConfig,
    BlendStrategy,
    PopularityStrategy,
    RecommendRequest,
    RulesStrategy,
    Strategy,
    WeightedStrategy,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Track = Callable[[Iterable[T], str, int], Iterator[T]]

EPOCH = datetime(2018, 1, 1, tzinfo=UTC)
BASELINES = (
    "popularity",
    "rules",
    "itemknn-bm25",
    "itemknn-cosine",
    "als",
    "ease",
    "sasrec",
    "gru4rec",
)


def _no_track(items: Iterable[T], _label: str, _total: int) -> Iterator[T]:
    return iter(items)


@dataclass
class Grid:
    """What the validation split chooses among.

    The baselines' grids are wide and logarithmic (denser data wants EASE's λ in the
    thousands, sparse data in the tens), so no baseline is under-tuned; they are scored in
    one matrix product per setting, which is what makes them affordable on two cores.
    """

    ease_lambda: Sequence[float] = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
    ease_content_alpha: Sequence[float] = (10.0, 40.0, 100.0)
    knn_neighbours: Sequence[int] = (10, 30, 100, 300, 1000)
    als_factors: Sequence[int] = (32, 64, 128, 256)
    als_regularization: Sequence[float] = (0.01, 0.1, 1.0, 10.0)
    content: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4)
    popularity: Sequence[float] = (0.0, 0.05, 0.1, 0.2)
    rules: Sequence[float] = (0.0, 0.05)
    sequence: Sequence[float] = (0.0, 0.1, 0.2, 0.4)
    recency_decay: Sequence[float] = (0.7, 0.85)
    # Sequential baselines (empty: skip them); RecBole's defaults, epochs by early stopping.
    sequential: Sequence[str] = ("sasrec",)
    seq_max_epochs: int = 16


@dataclass
class Row:
    strategy: str
    baseline: bool
    valid: Metrics
    test: Metrics
    params: str
    seconds: float = 0.0  # training time, where it is worth reporting


@dataclass
class Report:
    dataset: str
    users: int
    items: int
    rows: list[Row]
    chosen: dict[str, str] = field(default_factory=dict)
    hybrid_weights: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Every setting tried on validation and its NDCG@10, per tuned model.
    grids: dict[str, dict[str, float]] = field(default_factory=dict)

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.strategy == name)

    @property
    def best_baseline(self) -> Row:
        return max((r for r in self.rows if r.baseline), key=lambda r: r.test.ndcg10)


def item_embeddings(data: LeaveOneOutData, embedder: Embedder, cache_dir: Path | None) -> Vectors:
    """Encode every item's product text once; cached on disk by text and model."""
    texts = [product_text(p.name, p.category, p.tags, p.description) for p in data.products]
    digest = hashlib.sha256(("\n".join(texts) + embedder.model_id).encode()).hexdigest()[:16]
    path = cache_dir / f"{data.name}-{digest}.npy" if cache_dir else None
    if path is not None and path.exists():
        cached: Vectors = np.load(path).astype(np.float32)
        return cached
    vectors = embedder.encode(texts, batch_size=64)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


class SplitContext:
    """Snapshot, requests and models for one split (models learn from its histories)."""

    def __init__(self, data: LeaveOneOutData, split: Split, embeddings: Vectors) -> None:
        self.split = split
        self.ids = [p.id for p in data.products]
        counts = np.bincount(
            np.fromiter(itertools.chain.from_iterable(split.histories), np.int64),
            minlength=data.n_items,
        )
        popularity = {pid: float(c) for pid, c in zip(self.ids, counts, strict=True) if c}
        self.snapshot = CatalogSnapshot.build(data.products, popularity, version=split.name)
        self.snapshot.embeddings = embeddings
        self.embeddings = embeddings
        rows = [(u, i, 1.0) for u, h in enumerate(split.histories) for i in h]
        self.user_items = user_items_matrix(rows, len(split.histories), data.n_items)
        self.user_items.data[:] = 1.0  # reviews: one "purchase" each, repeats count once
        self.requests = [self._request(h) for h in split.histories]

    def _request(self, history: list[int]) -> RecommendRequest:
        events = [
            InteractionRecord(
                action="purchase",
                created_at=EPOCH + timedelta(hours=j),
                product_id=self.ids[i],
            )
            for j, i in enumerate(history)
        ]
        return RecommendRequest(
            interactions=events, top_n=20, now=EPOCH + timedelta(hours=len(history) + 1)
        )

    def models(self, params: CFParams, kinds: Sequence[str]) -> ModelStore:
        return ModelStore(
            train(
                self.user_items,
                self.ids,
                params=params,
                item_embeddings=self.embeddings,
                kinds=kinds,
                version=self.split.name,
                sequences=self.split.histories,
            )
        )

    def decayed(self, decay: float) -> sp.csr_matrix:
        """Users × items with weight ``decay`` ** (position from the newest item)."""
        rows = [
            (u, i, decay ** (len(h) - 1 - j))
            for u, h in enumerate(self.split.histories)
            for j, i in enumerate(h)
        ]
        matrix = user_items_matrix(rows, len(self.split.histories), self.user_items.shape[1])
        return matrix

    def matrix_ndcg(self, score: Callable[[int, sp.csr_matrix], npt.NDArray[np.float32]]) -> float:
        """Validation NDCG@10 of ``score(first user, user rows) → users × items``.

        The grid search's fast path: one matrix product per block of users instead of one
        request per user. It ranks exactly as the single-model strategies do (their history
        weights are all 1 for these baselines), so the choice carries over.
        """
        total = 0.0
        targets = np.asarray(self.split.targets)
        for start in range(0, self.user_items.shape[0], 2048):
            rows = self.user_items[start : start + 2048]
            scores = np.asarray(score(start, rows), dtype=np.float64)
            scores[rows.nonzero()] = -np.inf
            target_scores = scores[np.arange(len(scores)), targets[start : start + 2048]]
            above = (scores > target_scores[:, None]).sum(axis=1)
            hit = np.isfinite(target_scores) & (above < 10)
            total += float((hit / np.log2(above + 2.0)).sum())
        return total / max(len(targets), 1)

    def run(self, strategy: Strategy, track: Track[RecommendRequest], label: str) -> Metrics:
        # Blend strategies can skip building evidence; the contract test checks that ``rank``
        # returns exactly what ``recommend`` would.
        rank = getattr(strategy, "rank", None)
        lists = [
            rank(self.snapshot, request).tolist()
            if rank is not None
            else [r.index for r in strategy.recommend(self.snapshot, request)]
            for request in track(self.requests, label, len(self.requests))
        ]
        return summarise(lists, self.split.targets, len(self.snapshot), self.embeddings)


def _ndcg_from_ranks(ranks: Iterable[int | None]) -> float:
    values = [1.0 / np.log2(r + 2) if r is not None and r < 10 else 0.0 for r in ranks]
    return float(np.mean(values)) if values else 0.0


def _tune_hybrid(
    ctx: SplitContext, store: ModelStore, grid: Grid, track: Track[int]
) -> tuple[dict[str, float], float, float]:
    """One pass per recency decay; every weighting is scored from the same per-user parts."""
    combos = [
        {"content": c, "cf": 1.0 - c, "popularity": p, "rules": r, "sequence": q}
        for c, p, r, q in itertools.product(
            grid.content, grid.popularity, grid.rules, grid.sequence
        )
    ]
    best: tuple[float, dict[str, float], float] = (-1.0, combos[0], grid.recency_decay[0])
    matrix = np.array([[combo[s] for s in _ORDER] for combo in combos], dtype=np.float32)
    for decay in grid.recency_decay:
        probe = BlendStrategy(
            "hybrid",
            BlendConfig(
                weights={s: 1.0 for s in _ORDER if any(combo[s] for combo in combos)},
                recency_decay=decay,
            ),
            store,
        )
        ranks: list[list[int | None]] = [[] for _ in combos]
        for u in track(range(len(ctx.requests)), f"tune hybrid (decay {decay})", len(ctx.requests)):
            found = probe.parts(ctx.snapshot, ctx.requests[u])
            target = ctx.split.targets[u]
            if found is None:
                for r in ranks:
                    r.append(None)
                continue
            parts, blocked = found
            stacked = np.stack([parts.get(s, np.zeros(len(blocked))) for s in _ORDER]).astype(
                np.float32
            )
            blended = matrix @ stacked
            blended[:, blocked] = -np.inf
            target_scores = blended[:, target]
            above = (blended > target_scores[:, None]).sum(axis=1)
            for k, position in enumerate(above.tolist()):
                ranks[k].append(int(position) if np.isfinite(target_scores[k]) else None)
        for combo, r in zip(combos, ranks, strict=True):
            score = _ndcg_from_ranks(r)
            if score > best[0]:
                best = (score, combo, decay)
    return best[1], best[2], best[0]


_ORDER = ("content", "cf", "popularity", "rules", "sequence")


def evaluate(
    folder: Path,
    embedder: Embedder,
    *,
    cache_dir: Path | None = None,
    grid: Grid | None = None,
    track: Track[object] = _no_track,
    say: Callable[[str], None] = lambda _m: None,
) -> Report:
    grid = grid or Grid()
    started = time.perf_counter()
    data = load(folder)
    say(f"{data.name}: {data.n_items} items, {len(data.test.targets)} users")
    embeddings = item_embeddings(data, embedder, cache_dir)
    valid = SplitContext(data, data.valid, embeddings)
    test = SplitContext(data, data.test, embeddings)
    chosen: dict[str, str] = {}

    def pick(name: str, options: Sequence[tuple[str, Strategy, ModelStore | None]]) -> str:
        best_label, best_score = options[0][0], -1.0
        for label, strategy, _store in options:
            metrics = valid.run(strategy, track, f"tune {name} {label}")  # type: ignore[arg-type]
            say(f"  {name} {label}: validation NDCG@10 {metrics.ndcg10:.4f}")
            if metrics.ndcg10 > best_score:
                best_label, best_score = label, metrics.ndcg10
        chosen[name] = best_label
        return best_label

    # --- baselines' hyper-parameters on validation -----------------------------------------
    say("tuning baselines on the validation split")

    def choose(name: str, scored: dict[str, float]) -> str:
        for label, value in scored.items():
            say(f"  {name} {label}: validation NDCG@10 {value:.4f}")
        best = max(scored, key=lambda k: scored[k])
        chosen[name] = best
        grids[name] = scored
        return best

    grids: dict[str, dict[str, float]] = {}
    binary = valid.user_items
    ease_lambda = float(
        choose(
            "ease",
            {
                f"lambda={lam:g}": valid.matrix_ndcg(_times(binary, ease_weights(binary, lam=lam)))
                for lam in grid.ease_lambda
            },
        ).split("=")[1]
    )
    knn_scores: dict[str, dict[str, float]] = {"bm25": {}, "cosine": {}}
    for k in grid.knn_neighbours:
        store = valid.models(CFParams(knn_neighbours=k), kinds=("bm25", "cosine"))
        models = store.current()
        assert models is not None and models.bm25 is not None and models.cosine is not None
        for kind, sim in (("bm25", models.bm25), ("cosine", models.cosine)):
            knn_scores[kind][f"K={k}"] = valid.matrix_ndcg(_times(binary, sim))
    k_bm25 = int(choose("itemknn-bm25", knn_scores["bm25"]).split("=")[1])
    k_cos = int(choose("itemknn-cosine", knn_scores["cosine"]).split("=")[1])
    als_scores: dict[str, float] = {}
    als_grid = list(itertools.product(grid.als_factors, grid.als_regularization))
    for f, reg in als_grid:
        users, items = fit_als(binary, CFParams(als_factors=f, als_regularization=reg))
        als_scores[f"factors={f}, reg={reg:g}"] = valid.matrix_ndcg(_times(users, items.T))
    als_label = choose("als", als_scores)
    factors = int(als_label.split(",")[0].split("=")[1])
    als_reg = float(als_label.split("reg=")[1])

    # --- the hybrid's collaborative part and weights on validation ---------------------------
    say("tuning the hybrid on the validation split")
    decayed = valid.decayed(0.7)
    alpha = float(
        choose(
            "hybrid-cf",
            {
                f"alpha={a:g}": valid.matrix_ndcg(
                    _times(
                        decayed,
                        ease_weights(
                            binary, lam=ease_lambda, item_embeddings=embeddings, content_alpha=a
                        ),
                    )
                )
                for a in grid.ease_content_alpha
            },
        ).split("=")[1]
    )
    hybrid_store = valid.models(
        CFParams(ease_lambda=ease_lambda, ease_content_alpha=alpha),
        kinds=("ease_content", "transitions"),
    )
    weights, decay, tuned_ndcg = _tune_hybrid(
        valid,
        hybrid_store,
        grid,
        track,  # type: ignore[arg-type]
    )
    chosen["hybrid"] = (
        ", ".join(f"{k}={v:g}" for k, v in weights.items()) + f", recency_decay={decay:g}"
    )
    say(f"  hybrid {chosen['hybrid']}: validation NDCG@10 {tuned_ndcg:.4f}")

    params = CFParams(
        ease_lambda=ease_lambda,
        ease_content_alpha=alpha,
        knn_neighbours=k_bm25,
        als_factors=factors,
        als_regularization=als_reg,
    )
    hybrid_config = BlendConfig(weights=weights, recency_decay=decay)
    diverse_config = replace(hybrid_config, mmr_lambda=0.8, max_per_category=4)

    rows: list[Row] = []
    for split_ctx in (valid, test):
        say(f"training on the {split_ctx.split.name} histories")
        store = split_ctx.models(
            params, kinds=("bm25", "als", "ease", "ease_content", "transitions")
        )
        cos_store = split_ctx.models(replace(params, knn_neighbours=k_cos), kinds=("cosine",))
        strategies: list[tuple[Strategy, bool, str]] = [
            (PopularityStrategy(), True, "interaction counts of the split"),
            (RulesStrategy(), True, "top 3 categories +10, top 5 tags +3"),
            (BlendStrategy("itemknn-bm25", _single("bm25"), store), True, f"K={k_bm25}"),
            (BlendStrategy("itemknn-cosine", _single("cosine"), cos_store), True, f"K={k_cos}"),
            (BlendStrategy("als", _single("als"), store), True, als_label),
            (BlendStrategy("ease", _single("ease"), store), True, f"lambda={ease_lambda:g}"),
            (WeightedStrategy(), False, "action-weighted, decayed profile"),
            (
                BlendStrategy(
                    "embedding", BlendConfig(weights={"content": 1.0}, recency_decay=decay)
                ),
                False,
                f"MiniLM text, recency_decay={decay:g}",
            ),
            (
                BlendStrategy("hybrid", hybrid_config, store),
                False,
                f"{chosen['hybrid']}; cf = EASE+text (alpha={alpha:g})",
            ),
            (
                BlendStrategy("hybrid+mmr", diverse_config, store),
                False,
                "hybrid, MMR lambda=0.8, ≤4 per category",
            ),
        ]
        for strategy, baseline, label in strategies:
            metrics = split_ctx.run(strategy, track, f"{split_ctx.split.name}: {strategy.name}")  # type: ignore[arg-type]
            say(f"  {split_ctx.split.name} {strategy.name}: NDCG@10 {metrics.ndcg10:.4f}")
            existing = next((r for r in rows if r.strategy == strategy.name), None)
            if existing is None:
                rows.append(Row(strategy.name, baseline, metrics, metrics, label))
            else:
                existing.test = metrics
    seq_dir = cache_dir / "sequential" if cache_dir is not None else None
    for arch in grid.sequential:
        rows.append(_sequential_row(data, arch, grid, embeddings, seq_dir, say))
    notes = [
        "How the hybrid scores: five sources, each scaled so its best allowed candidate "
        "scores 1, then blended with the weights above. `content`: cosine similarity of every "
        "item's MiniLM vector to the weighted mean of the user's recent items' vectors; `cf`: "
        f"EASE (λ={ease_lambda:g}) with the text-embedding Gram matrix added to the item Gram "
        f"(α={alpha:g}), so items with similar descriptions share collaborative weight; "
        "`popularity`: log-popularity; `rules`: the weighted category/tag profile; "
        "`sequence`: item-to-item transitions counted in the split's ordered histories (an "
        "item followed by each of the next 3 items, weight 0.5^(distance−1), rows divided by "
        "their total + 1), read from the user's 5 newest items with weight 0.5^position. A "
        "user's items weigh action × recency_decay^position (newest first) in the other "
        "sources. A source whose chosen weight is 0 was not kept: validation said it did not "
        "help.",
        "",
        "`hybrid+mmr` is the same ranking with the diversity control on (MMR over the "
        "text embeddings, λ=0.8, at most 4 items per category): intra-list diversity "
        f"{_ild(rows, 'hybrid')} → {_ild(rows, 'hybrid+mmr')} for a small loss of accuracy.",
        "",
        "Every strategy ran through the `Strategy` contract (`rank`, i.e. `recommend` without "
        "building evidence; the contract test checks they agree).",
    ]
    report = Report(
        dataset=data.name,
        notes=notes,
        seconds=time.perf_counter() - started,
        users=len(data.test.targets),
        items=data.n_items,
        rows=rows,
        chosen=chosen,
        grids=grids,
        hybrid_weights={**weights, "recency_decay": decay, "ease_content_alpha": alpha},
    )
    if cache_dir is not None:
        # The finished run, so its report can be re-rendered without re-running it.
        cache_dir.mkdir(parents=True, exist_ok=True)
        (cache_dir / f"report-{data.name}.pkl").write_bytes(pickle.dumps(report))
    return report


def _times(
    left: sp.csr_matrix | npt.NDArray[np.float32], right: sp.csr_matrix | npt.NDArray[np.float32]
) -> Callable[[int, sp.csr_matrix], npt.NDArray[np.float32]]:
    """Scores of a block of users: their rows of ``left`` times ``right``."""

    def score(start: int, rows: sp.csr_matrix) -> npt.NDArray[np.float32]:
        product = left[start : start + rows.shape[0]] @ right
        if isinstance(product, sp.spmatrix):
            return np.asarray(product.toarray())
        return np.asarray(product)

    return score


def _sequential_row(
    data: LeaveOneOutData,
    arch: str,
    grid: Grid,
    embeddings: Vectors,
    cache_dir: Path | None,
    say: Callable[[str], None],
) -> Row:
    """Train on the validation histories (early stopping on their targets); rank both splits
    in full, the test one from the test histories (RecBole's leave-one-out protocol)."""
    params = sequential.SeqParams(architecture=arch, max_epochs=grid.seq_max_epochs)
    say(f"training {arch} on the validation histories (early stopping on validation)")
    model, fitted = sequential.cached_fit(
        cache_dir,
        f"{data.name}-valid",
        data.valid.histories,
        data.n_items,
        params,
        valid=(data.valid.histories, data.valid.targets),
        say=say,
    )
    metrics: list[Metrics] = []
    for split in (data.valid, data.test):
        lists = sequential.top_lists(
            sequential.scores(model, split.histories, params), split.histories
        )
        metrics.append(summarise(lists, split.targets, data.n_items, embeddings))
        say(f"  {split.name} {arch}: NDCG@10 {metrics[-1].ndcg10:.4f}")
    shape = (
        f"{params.layers} layers, {params.heads} heads, d={params.hidden}"
        if arch == "sasrec"
        else f"GRU {params.gru_hidden}, d={params.hidden}"
    )
    label = (
        f"{shape}, dropout {params.dropout if arch == 'sasrec' else min(params.dropout, 0.3)}, "
        f"lr {params.lr:g}, epochs={fitted.epochs} of ≤{params.max_epochs} (early stop), "
        f"trained {fitted.seconds / 60:.1f} min"
    )
    row = Row(arch, True, metrics[0], metrics[1], label)
    row.seconds = fitted.seconds
    return row


def _ild(rows: list[Row], name: str) -> str:
    row = next((r for r in rows if r.strategy == name), None)
    return f"{row.test.diversity:.3f}" if row else "n/a"


def _single(kind: str, decay: float = 1.0) -> BlendConfig:
    return BlendConfig(weights={"cf": 1.0}, cf_model=kind, recency_decay=decay)


__all__ = ["BASELINES", "Grid", "Report", "Row", "evaluate", "rank_of"]
