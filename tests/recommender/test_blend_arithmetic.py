"""The blend's fast arithmetic (float32 next-item scores, masked maxima, in-place sums, lazy
evidence) against the straightforward computation it replaced, on small random worlds."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
import torch

from backend.recommender import sequential
from backend.recommender.cf import CFModels, ModelStore, train, user_items_matrix
from backend.recommender.matvec import matvec
from backend.recommender.profile import InteractionRecord
from backend.recommender.snapshot import CatalogSnapshot, ProductRecord
from backend.recommender.strategies import BlendConfig, BlendStrategy, RecommendRequest, sources
from backend.recommender.strategies.base import CandidateFilter
from backend.recommender.strategies.ranking import blocked_mask, top_k

from .conftest import NOW

N = 240
WEIGHTS = {"content": 0.4, "cf": 0.6, "popularity": 0.2, "sequence": 0.1, "next_item": 0.2}


def world(seed: int) -> tuple[CatalogSnapshot, CFModels, sequential.NextItemScorer]:
    rng = np.random.default_rng(seed)
    products = [
        ProductRecord(uuid.UUID(int=i + 1), f"p{i}", f"c{i % 4}", Decimal(1 + i % 7), 1, ())
        for i in range(N)
    ]
    popularity = {p.id: float(c) for p, c in zip(products, rng.zipf(1.6, N), strict=True)}
    snapshot = CatalogSnapshot.build(products, popularity, version=f"w{seed}")
    vectors = rng.normal(size=(N, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    snapshot.attach_embeddings([p.id for p in products], vectors)
    histories = [list(rng.integers(0, N, int(rng.integers(2, 12)))) for _ in range(150)]
    triples = [(u, int(i), 1.0) for u, h in enumerate(histories) for i in h]
    models = train(
        user_items_matrix(triples, len(histories), N),
        [p.id for p in products],
        kinds=("bm25", "transitions"),
        sequences=histories,
    )
    params = sequential.SeqParams(hidden=16, heads=2, inner=24, layers=2, max_len=8, text="add")
    torch.manual_seed(seed)
    scorer = sequential.NextItemScorer(sequential.build_model(N, params, vectors), params)
    models.next_item = scorer
    return snapshot, models, scorer


def requests(snapshot: CatalogSnapshot, seed: int) -> list[RecommendRequest]:
    rng = np.random.default_rng(seed + 100)
    out = []
    for r in range(12):
        items = rng.integers(0, N, int(rng.integers(1, 12)))
        out.append(
            RecommendRequest(
                interactions=[
                    InteractionRecord(
                        str(rng.choice(["view", "add_to_cart", "purchase", "remove_from_cart"])),
                        NOW - timedelta(hours=j),
                        snapshot.products[int(i)].id,
                    )
                    for j, i in enumerate(items)
                ],
                top_n=10,
                now=NOW,
                # Every third request filtered to one category: most items blocked.
                filters=CandidateFilter(category="c1") if r % 3 == 0 else CandidateFilter(),
            )
        )
    return out


def straightforward(
    snapshot: CatalogSnapshot,
    models: CFModels,
    scorer: sequential.NextItemScorer,
    request: RecommendRequest,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray] | None:
    """The blend computed plainly, in float64: each source a dense array, normalised by the
    largest |score| among allowed items, weighted and summed; next_item from torch's logits."""
    history = sources.user_history(snapshot, request)
    blocked = blocked_mask(snapshot, request, history.interacted)
    matrix = snapshot.embeddings.astype(np.float64)
    profile = history.weights @ matrix[history.items]
    if history.empty:
        return None
    raw = {
        "content": matrix @ (profile / np.linalg.norm(profile)),
        "cf": sources.cf_scores(models, "bm25", history),
        "sequence": sources.transition_scores(models, history, 0.5),
    }
    sequence = sources.item_sequence(snapshot, request)
    if sequence:  # (a removal from the cart is no step of a sequence)
        tail = np.asarray(sequence[-scorer.params.max_len :], dtype=np.int64) + 1
        logits = scorer._logits(tail).astype(np.float64)
        raw["next_item"] = np.exp((logits - logits.max()) / 2.0)
    if not any(np.any(v[~blocked] > 0) for v in raw.values()):
        return None
    raw["popularity"] = np.log1p(snapshot.popularity) / np.log1p(snapshot.popularity).max()
    parts = {}
    for name, values in raw.items():
        top = np.abs(values[~blocked]).max() if (~blocked).any() else 0.0
        parts[name] = WEIGHTS[name] * (values / top if top > 0 else np.zeros_like(values))
    return np.sum(list(parts.values()), axis=0), parts, blocked


@pytest.mark.parametrize("seed", range(4))
def test_the_blend_equals_the_straightforward_computation(seed):
    snapshot, models, scorer = world(seed)
    strategy = BlendStrategy("hybrid", BlendConfig(weights=WEIGHTS), ModelStore(models))
    checked = 0
    for request in requests(snapshot, seed):
        expected = straightforward(snapshot, models, scorer, request)
        history = strategy._history(snapshot, request)
        blocked = blocked_mask(snapshot, request, history.interacted)
        scored = strategy._score(snapshot, request, history, blocked, strategy._models(snapshot))
        if expected is None:
            assert scored is None
            continue
        blended, parts, want_blocked = expected
        assert scored is not None and np.array_equal(blocked, want_blocked)
        np.testing.assert_allclose(scored.blended, blended, rtol=1e-5, atol=1e-6)
        # The same ten, in the same order (top_k's tie-breaks on the plain sum).
        want = top_k(blended, 10, blocked, snapshot.popularity, positive_only=True)
        assert strategy.rank(snapshot, request)[: len(want)].tolist() == want.tolist()
        # Evidence: each source's contribution to every chosen item.
        for i in want.tolist():
            for name, values in parts.items():
                assert scored.parts[name].at(i) == pytest.approx(values[i], rel=1e-5, abs=1e-6)
        # ``parts`` (what the evaluation reads) is each source normalised, unweighted.
        found = strategy.parts(snapshot, request)
        assert found is not None
        for name, values in found[0].items():
            np.testing.assert_allclose(values * WEIGHTS[name], parts[name], rtol=1e-5, atol=1e-6)
        checked += 1
    assert checked >= 6  # most requests have something personal to blend


def test_next_item_scores_skip_unknown_items_and_stay_float32():
    logits = np.array([1.0, -np.inf, 3.0, -1.0], dtype=np.float32)
    models = CFModels(version="t", item_ids=[], next_item=lambda _s: logits)
    got = sources.next_item_scores(models, [0])
    assert got is not None and got.dtype == np.float32
    np.testing.assert_allclose(got, [math.exp(-1.0), 0.0, 1.0, math.exp(-2.0)], rtol=1e-6)
    assert logits[2] == 3.0  # the model's own array is left as it was
    every_unknown = CFModels(
        version="t", item_ids=[], next_item=lambda _s: np.full(3, -np.inf, np.float32)
    )
    assert sources.next_item_scores(every_unknown, [0]) is None


def test_the_masked_range_ignores_blocked_items():
    scores = np.array([5.0, -7.0, 2.0, -1.0])
    allowed = np.array([False, False, True, True])
    assert sources.allowed_range(scores, allowed) == (2.0, -1.0)
    assert sources.extent(sources.allowed_range(scores, allowed)) == 2.0
    assert sources.extent(sources.allowed_range(scores, ~allowed)) == 7.0  # signs kept
    assert sources.extent(sources.allowed_range(scores, np.zeros(4, dtype=bool))) == 0.0


def test_matvec_is_the_matrix_product():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(1000, 64)).astype(np.float32)
    vector = rng.normal(size=64).astype(np.float32)
    got = matvec(matrix, vector)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, matrix.astype(np.float64) @ vector, rtol=1e-5, atol=1e-5)
