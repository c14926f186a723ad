"""Validation grids: baselines' hyper-parameters and the hybrid's weights.

Every score here is validation NDCG@10; test targets are never read. Grids are logarithmic
and wide; a grid over two knobs is searched one knob at a time (coordinate ascent from the
middle of the grid, repeated until nothing changes) rather than as the full product, which
tries a fraction of the settings and reaches the same best on these unimodal curves.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from backend.recommender.cf import CFParams, ModelStore
from backend.recommender.evaluation.context import SplitContext, Track, times
from backend.recommender.strategies import BlendConfig, BlendStrategy

K = TypeVar("K")
ORDER = ("content", "cf", "popularity", "rules", "sequence", "next_item")


def coordinate_search(
    axes: Sequence[Sequence[K]], score: Callable[[tuple[K, ...]], float]
) -> tuple[tuple[K, ...], dict[tuple[K, ...], float]]:
    """Best point of the grid ``axes[0] × axes[1] × …``, one axis at a time.

    Starts at each axis's middle value and sweeps every axis in turn holding the others at
    the current best, until a full round changes nothing. A sweep is a line search: from the
    current value it walks towards the better neighbour and stops at the first step that
    does not improve, so on these unimodal curves the far, poor ends of a wide grid (the
    costliest ALS fits among them) are never fitted. Returns the best point and every point
    scored (each scored once).
    """
    seen: dict[tuple[K, ...], float] = {}

    def value(point: tuple[K, ...]) -> float:
        if point not in seen:
            seen[point] = score(point)
        return seen[point]

    def at(point: tuple[K, ...], a: int, k: int) -> tuple[K, ...]:
        return point[:a] + (axes[a][k],) + point[a + 1 :]

    best = tuple(axis[len(axis) // 2] for axis in axes)
    value(best)  # scored even when no axis has a neighbour to compare with
    while True:
        before = best
        for a, axis in enumerate(axes):
            k = list(axis).index(best[a])
            for step in (1, -1):
                while 0 <= k + step < len(axis) and value(at(best, a, k + step)) > value(best):
                    k += step
                    best = at(best, a, k)
        if best == before:
            return best, seen


def line_search(values: Sequence[float], score: Callable[[float], float]) -> dict[float, float]:
    """One knob's unimodal curve, walked from the middle of its grid (``coordinate_search``
    on one axis): every value scored, in grid order."""
    _, seen = coordinate_search([values], lambda point: score(point[0]))
    return {v: seen[(v,)] for v in values if (v,) in seen}


def tune_ease(valid: SplitContext, lambdas: Sequence[float]) -> dict[str, float]:
    """λ by line search: each setting is an inversion of the item Gram (the costly part)."""
    binary = valid.user_items
    scored = line_search(lambdas, lambda lam: valid.matrix_ndcg(times(binary, valid.ease(lam))))
    return {f"lambda={lam:g}": v for lam, v in scored.items()}


def tune_knn(valid: SplitContext, neighbours: Sequence[int]) -> dict[str, dict[str, float]]:
    scored: dict[str, dict[str, float]] = {"bm25": {}, "cosine": {}}
    for k in neighbours:
        store = valid.models(CFParams(knn_neighbours=k), kinds=("bm25", "cosine"))
        models = store.current()
        assert models is not None and models.bm25 is not None and models.cosine is not None
        for kind, sim in (("bm25", models.bm25), ("cosine", models.cosine)):
            scored[kind][f"K={k}"] = valid.matrix_ndcg(times(valid.user_items, sim))
    return scored


def als_label(factors: int, reg: float) -> str:
    return f"factors={factors}, reg={reg:g}"


def tune_als(
    valid: SplitContext, factors: Sequence[int], regularization: Sequence[float]
) -> dict[str, float]:
    """ALS by coordinate search over factors × regularisation (each fit is the costly part)."""

    def score(point: tuple[float, ...]) -> float:
        f, reg = int(point[0]), float(point[1])
        users, items = valid.als(f, reg)
        return valid.matrix_ndcg(times(users, items.T))

    axes: list[Sequence[float]] = [list(map(float, factors)), list(regularization)]
    _, seen = coordinate_search(axes, score)
    ordered = sorted(seen.items())
    return {als_label(int(f), reg): v for (f, reg), v in ordered}


def tune_hybrid_cf(
    valid: SplitContext, lam: float, alphas: Sequence[float], decay: float = 0.7
) -> dict[str, float]:
    """The text weight α of the hybrid's EASE+text, scored with recency-decayed histories."""
    decayed = valid.decayed(decay)
    scored = line_search(alphas, lambda a: valid.matrix_ndcg(times(decayed, valid.ease(lam, a))))
    return {f"alpha={a:g}": v for a, v in scored.items()}


def _ndcg_from_ranks(ranks: Sequence[int | None]) -> float:
    values = [1.0 / np.log2(r + 2) if r is not None and r < 10 else 0.0 for r in ranks]
    return float(np.mean(values)) if values else 0.0


def tune_hybrid(
    ctx: SplitContext,
    store: ModelStore,
    *,
    content: Sequence[float],
    popularity: Sequence[float],
    rules: Sequence[float],
    sequence: Sequence[float],
    recency_decay: Sequence[float],
    track: Track[int],
    next_item: Sequence[float] = (0.0,),
) -> tuple[dict[str, float], float, float]:
    """One pass per recency decay; every weighting is scored from the same per-user parts
    (``BlendStrategy.parts``, the very code that serves), so the grid costs one pass.

    With a ``next_item`` grid beyond 0 (the store's models carry a sequential scorer), one
    more pass at the chosen decay re-chooses what moves with it: its weight × ``content``
    (and so cf) × ``sequence``, popularity and rules held (on Scientific's validation split,
    a full coordinate search moved only those; bench/fusion_lab.py ``sasrec-tune``). A
    product of all six axes would cost each user's pass five times over.
    """
    combos = [
        {"content": c, "cf": 1.0 - c, "popularity": p, "rules": r, "sequence": q, "next_item": 0.0}
        for c, p, r, q in itertools.product(content, popularity, rules, sequence)
    ]
    best: tuple[float, dict[str, float], float] = (-1.0, combos[0], recency_decay[0])
    for decay in recency_decay:
        scores = _score_combos(ctx, store, combos, decay, track, f"tune hybrid (decay {decay})")
        for combo, score in zip(combos, scores, strict=True):
            if score > best[0]:
                best = (score, combo, decay)
    if any(next_item):
        chosen, decay = best[1], best[2]
        around = [
            {**chosen, "content": c, "cf": 1.0 - c, "sequence": q, "next_item": n}
            for c, q, n in itertools.product(content, sequence, next_item)
        ]
        scores = _score_combos(ctx, store, around, decay, track, "tune hybrid (next_item)")
        for combo, score in zip(around, scores, strict=True):
            if score > best[0]:
                best = (score, combo, decay)
    return best[1], best[2], best[0]


def _score_combos(
    ctx: SplitContext,
    store: ModelStore,
    combos: Sequence[dict[str, float]],
    decay: float,
    track: Track[int],
    label: str,
) -> list[float]:
    """Validation NDCG@10 of each weighting, from one pass over the users."""
    matrix = np.array([[combo.get(s, 0.0) for s in ORDER] for combo in combos], dtype=np.float32)
    probe = BlendStrategy(
        "hybrid",
        BlendConfig(
            weights={s: 1.0 for s in ORDER if any(combo.get(s) for combo in combos)},
            recency_decay=decay,
        ),
        store,
    )
    ranks: list[list[int | None]] = [[] for _ in combos]
    for u in track(range(len(ctx.requests)), label, len(ctx.requests)):
        found = probe.parts(ctx.snapshot, ctx.requests[u])
        target = ctx.split.targets[u]
        if found is None:
            for r in ranks:
                r.append(None)
            continue
        parts, blocked = found
        stacked = np.stack([parts.get(s, np.zeros(len(blocked))) for s in ORDER]).astype(np.float32)
        blended = matrix @ stacked
        blended[:, blocked] = -np.inf
        target_scores = blended[:, target]
        above = (blended > target_scores[:, None]).sum(axis=1)
        for k, position in enumerate(above.tolist()):
            ranks[k].append(int(position) if np.isfinite(target_scores[k]) else None)
    return [_ndcg_from_ranks(r) for r in ranks]
