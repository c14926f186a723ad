"""Leave-one-out evaluation of every strategy, through the same ``Strategy`` contract.

Protocol (the dataset's README): models learn from each user's split history only; every
item is ranked except that history; one held-out target per user. Hyper-parameters and the
hybrid's weights are chosen on the validation targets only, then frozen for the test split.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from backend.recommender import sequential
from backend.recommender.cf import CFParams, ModelStore
from backend.recommender.embedder import Embedder, Vectors
from backend.recommender.evaluation import tuning
from backend.recommender.evaluation.context import (
    SplitContext,
    Track,
    item_embeddings,
    no_track,
)
from backend.recommender.evaluation.dataset import LeaveOneOutData, load
from backend.recommender.evaluation.metrics import Metrics, rank_of, summarise
from backend.recommender.strategies import (
    BlendConfig,
    BlendStrategy,
    PopularityStrategy,
    RulesStrategy,
    Strategy,
    WeightedStrategy,
)

log = logging.getLogger(__name__)

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


@dataclass
class Grid:
    """What the validation split chooses among.

    The baselines' grids are wide and logarithmic (denser data wants EASE's λ in the
    thousands, sparse data in the tens), so no baseline is under-tuned; they are scored in
    one matrix product per setting, which is what makes them affordable on two cores.
    """

    ease_lambda: Sequence[float] = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
    ease_content_alpha: Sequence[float] = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
    knn_neighbours: Sequence[int] = (10, 30, 100, 300, 1000, 3000)
    als_factors: Sequence[int] = (32, 64, 128, 256, 512, 1024)
    als_regularization: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1000.0)
    content: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    popularity: Sequence[float] = (0.0, 0.05, 0.1, 0.2)
    rules: Sequence[float] = (0.0, 0.05)
    sequence: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.4)
    # The sequential model's next-item scores in the hybrid (all 0: not tried). Its model is
    # SASRec trained like the baseline row, with the items' text in their representation
    # (``next_item_text``; "none" reuses the baseline row's model as it is).
    next_item: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.5)
    next_item_text: str = "add"
    recency_decay: Sequence[float] = (0.7, 0.85)
    # Sequential baselines (empty: skip them); RecBole's defaults, epochs by early stopping.
    sequential: Sequence[str] = ("sasrec",)
    seq_max_epochs: int = 16
    # Stop at the first validation check (every 2 epochs) that does not improve.
    seq_patience: int = 1
    # BLAS threads. The per-user loops do small products, where a second BLAS thread on a
    # shared two-core machine waits more than it works (30× slower measured); the sequential
    # model trains in a thread of its own beside the grids, which is where the second core goes.
    blas_threads: int = 1


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
    cpu_seconds: float = 0.0
    # What this run read from its cache instead of computing (empty: a cold run).
    cached: list[str] = field(default_factory=list)

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.strategy == name)

    @property
    def best_baseline(self) -> Row:
        return max((r for r in self.rows if r.baseline), key=lambda r: r.test.ndcg10)


def evaluate(
    folder: Path,
    embedder: Embedder,
    *,
    cache_dir: Path | None = None,
    grid: Grid | None = None,
    track: Track[object] = no_track,
    say: Callable[[str], None] = lambda _m: None,
) -> Report:
    grid = grid or Grid()
    # torch's own pool too: the hybrid's next-item source runs one small forward pass per
    # user, where a second thread only waits (set before the training thread reads it).
    torch_threads = sequential.set_threads(grid.blas_threads)
    try:
        with threadpool_limits(grid.blas_threads, "blas"):
            return _evaluate(folder, embedder, cache_dir, grid, track, say)
    finally:
        sequential.set_threads(torch_threads)


def _evaluate(
    folder: Path,
    embedder: Embedder,
    cache_dir: Path | None,
    grid: Grid,
    track: Track[object],
    say: Callable[[str], None],
) -> Report:
    started, cpu_started = time.perf_counter(), time.process_time()
    data = load(folder)
    say(f"{data.name}: {data.n_items} items, {len(data.test.targets)} users")
    # The sequential models need only the histories: they train in a thread of their own
    # (torch leaves the interpreter lock while it computes) while the grids run here.
    seq_dir = cache_dir / "sequential" if cache_dir is not None else None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sequential")
    fits = {
        arch: pool.submit(_fit_sequential, data, arch, grid, seq_dir, say)
        for arch in grid.sequential
    }
    cached: list[str] = []
    embeddings, from_cache = item_embeddings(data, embedder, cache_dir)
    if from_cache:
        cached.append("item text embeddings")
    hybrid_fit = _hybrid_sequential(data, grid, embeddings, fits, pool, seq_dir, say)
    pool.shutdown(wait=False)
    valid = SplitContext(data, data.valid, embeddings)
    test = SplitContext(data, data.test, embeddings)
    chosen: dict[str, str] = {}
    grids: dict[str, dict[str, float]] = {}

    def choose(name: str, scored: dict[str, float]) -> str:
        for label, value in scored.items():
            say(f"  {name} {label}: validation NDCG@10 {value:.4f}")
        best = max(scored, key=lambda k: scored[k])
        chosen[name] = best
        grids[name] = scored
        return best

    # --- baselines' hyper-parameters on validation -----------------------------------------
    say("tuning baselines on the validation split")
    ease_lambda = float(choose("ease", tuning.tune_ease(valid, grid.ease_lambda)).split("=")[1])
    knn_scores = tuning.tune_knn(valid, grid.knn_neighbours)
    k_bm25 = int(choose("itemknn-bm25", knn_scores["bm25"]).split("=")[1])
    k_cos = int(choose("itemknn-cosine", knn_scores["cosine"]).split("=")[1])
    als_label = choose("als", tuning.tune_als(valid, grid.als_factors, grid.als_regularization))
    factors = int(als_label.split(",")[0].split("=")[1])
    als_reg = float(als_label.split("reg=")[1])

    # --- the hybrid's collaborative part and weights on validation ---------------------------
    say("tuning the hybrid on the validation split")
    alpha = float(
        choose(
            "hybrid-cf", tuning.tune_hybrid_cf(valid, ease_lambda, grid.ease_content_alpha)
        ).split("=")[1]
    )
    hybrid_store = valid.models(
        CFParams(ease_lambda=ease_lambda, ease_content_alpha=alpha),
        kinds=("ease_content", "transitions"),
    )
    next_item, next_item_label = None, ""
    if hybrid_fit is not None:
        model, fitted, seq_params = hybrid_fit.result()
        next_item = sequential.NextItemScorer(model, seq_params)
        next_item_label = (
            f"SASRec, text={seq_params.text}, epochs={fitted.epochs} "
            f"({'read from the cache' if fitted.cached else f'{fitted.seconds / 60:.1f} min'})"
        )
        if fitted.cached:
            cached.append("the hybrid's sequential model")
        _with_next_item(hybrid_store, next_item)
    weights, decay, tuned_ndcg = tuning.tune_hybrid(
        valid,
        hybrid_store,
        content=grid.content,
        popularity=grid.popularity,
        rules=grid.rules,
        sequence=grid.sequence,
        recency_decay=grid.recency_decay,
        track=track,  # type: ignore[arg-type]
        next_item=grid.next_item if next_item is not None else (0.0,),
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
        # The model trained on the validation histories ranks the test split from the test
        # histories, as the baseline row does (RecBole's leave-one-out protocol).
        _with_next_item(store, next_item)
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
                f"{chosen['hybrid']}; cf = EASE+text (alpha={alpha:g})"
                + (f"; next_item = {next_item_label}" if weights.get("next_item") else ""),
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
    for arch, fitting in fits.items():
        row, was_cached = _sequential_row(data, arch, fitting, embeddings, say)
        rows.append(row)
        if was_cached:
            cached.append(f"{arch} model")
    notes = [
        "How the hybrid scores: six sources, each scaled so its best allowed candidate "
        "scores 1, then blended with the weights above. `content`: cosine similarity of every "
        "item's MiniLM vector to the weighted mean of the user's recent items' vectors; `cf`: "
        f"EASE (λ={ease_lambda:g}) with the text-embedding Gram matrix added to the item Gram "
        f"(α={alpha:g}), so items with similar descriptions share collaborative weight; "
        "`popularity`: log-popularity; `rules`: the weighted category/tag profile; "
        "`sequence`: item-to-item transitions counted in the split's ordered histories (an "
        "item followed by each of the next 3 items, weight 0.5^(distance−1), rows divided by "
        "their total + 1), read from the user's 5 newest items with weight 0.5^position; "
        "`next_item`: SASRec's next-item logits after the user's ordered items, as "
        "exp((logit − best) / 2), from a SASRec whose items are their ID embedding plus a "
        "learned projection of their MiniLM vector, trained like the baseline row (validation "
        "histories, early stopping on validation; the test split read from the test "
        "histories). A user's items weigh action × recency_decay^position (newest first) in "
        "the other sources. A source whose chosen weight is 0 was not kept: validation said "
        "it did not help.",
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
        cpu_seconds=time.process_time() - cpu_started,
        cached=cached,
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


def _fit_sequential(
    data: LeaveOneOutData,
    arch: str,
    grid: Grid,
    cache_dir: Path | None,
    say: Callable[[str], None],
    text: str = "none",
    vectors: Vectors | None = None,
) -> tuple[sequential.SASRec | sequential.GRU4Rec, sequential.FitInfo, sequential.SeqParams]:
    """Train on the validation histories, early stopping on their targets (or read the cache)."""
    params = sequential.SeqParams(
        architecture=arch, max_epochs=grid.seq_max_epochs, patience=grid.seq_patience, text=text
    )
    with_text = f" with the items' text ({text})" if text != "none" else ""
    say(f"training {arch}{with_text} on the validation histories (early stopping on validation)")
    model, fitted = fit_on_validation(data, params, cache_dir, vectors, say)
    return model, fitted, params


def fit_on_validation(
    data: LeaveOneOutData,
    params: sequential.SeqParams,
    cache_dir: Path | None,
    vectors: Vectors | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[sequential.SASRec | sequential.GRU4Rec, sequential.FitInfo]:
    """A sequential model trained on the validation histories with early stopping on their
    targets, cached by data and settings: the baseline row, the hybrid's next_item source and
    the fusion lab all read the same model."""
    return sequential.cached_fit(
        cache_dir,
        f"{data.name}-valid",
        data.valid.histories,
        data.n_items,
        params,
        valid=(data.valid.histories, data.valid.targets),
        text=vectors,
        say=say,
    )


def _hybrid_sequential(
    data: LeaveOneOutData,
    grid: Grid,
    embeddings: Vectors,
    fits: dict[str, Future[tuple[Any, sequential.FitInfo, sequential.SeqParams]]],
    pool: ThreadPoolExecutor,
    cache_dir: Path | None,
    say: Callable[[str], None],
) -> Future[tuple[Any, sequential.FitInfo, sequential.SeqParams]] | None:
    """The model behind the hybrid's ``next_item`` source: the baseline row's own when it is
    the same model, else one more fit queued behind the baselines' in their thread."""
    if not any(grid.next_item):
        return None
    if grid.next_item_text == "none" and "sasrec" in fits:
        return fits["sasrec"]
    return pool.submit(
        _fit_sequential, data, "sasrec", grid, cache_dir, say, grid.next_item_text, embeddings
    )


def _with_next_item(store: ModelStore, scorer: sequential.NextItemScorer | None) -> None:
    models = store.current()
    if models is not None and scorer is not None:
        models.next_item = scorer


def _sequential_row(
    data: LeaveOneOutData,
    arch: str,
    fitting: Future[
        tuple[sequential.SASRec | sequential.GRU4Rec, sequential.FitInfo, sequential.SeqParams]
    ],
    embeddings: Vectors,
    say: Callable[[str], None],
) -> tuple[Row, bool]:
    """Rank both splits in full with the model trained on the validation histories, the
    test one from the test histories (RecBole's leave-one-out protocol)."""
    model, fitted, params = fitting.result()
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
    origin = "read from the cache" if fitted.cached else "trained"
    label = (
        f"{shape}, dropout {params.dropout if arch == 'sasrec' else min(params.dropout, 0.3)}, "
        f"lr {params.lr:g}, epochs={fitted.epochs} of ≤{params.max_epochs} (early stop), "
        f"{origin}: {fitted.seconds / 60:.1f} min of training"
    )
    row = Row(arch, True, metrics[0], metrics[1], label)
    row.seconds = fitted.seconds
    return row, fitted.cached


def _ild(rows: list[Row], name: str) -> str:
    row = next((r for r in rows if r.strategy == name), None)
    return f"{row.test.diversity:.3f}" if row else "n/a"


def _single(kind: str, decay: float = 1.0) -> BlendConfig:
    return BlendConfig(weights={"cf": 1.0}, cf_model=kind, recency_decay=decay)


__all__ = ["BASELINES", "Grid", "Report", "Row", "evaluate", "rank_of"]
