"""Grid search helpers: coordinate search, grid edges, and the EASE cache per (λ, α)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.recommender.cf import CFParams, ease_weights
from backend.recommender.evaluation.context import SplitContext, no_track
from backend.recommender.evaluation.dataset import load
from backend.recommender.evaluation.report import edge_step, grid_edges
from backend.recommender.evaluation.tuning import coordinate_search, line_search, tune_hybrid
from tests.evaluation.test_runner import write_dataset
from tests.recommender.fakes import FakeEmbedder


def test_coordinate_search_finds_the_peak_without_the_full_product():
    xs, ys = [1, 2, 3, 4, 5], [10, 20, 30, 40, 50]
    calls: list[tuple[int, int]] = []

    def score(point: tuple[int, int]) -> float:
        calls.append(point)
        x, y = point
        return -((x - 4) ** 2) - ((y - 20) / 10) ** 2  # unimodal, peak at (4, 20)

    best, seen = coordinate_search([xs, ys], score)
    assert best == (4, 20)
    assert len(calls) == len(set(calls)) == len(seen)  # each point scored once
    assert len(seen) < len(xs) * len(ys)


def test_coordinate_search_walks_towards_the_peak_and_skips_the_far_ends():
    xs = [32, 64, 128, 256, 512, 1024]
    regs = [0.1, 1.0, 10.0, 100.0, 1000.0]

    def score(point: tuple[float, float]) -> float:
        f, reg = point
        return -abs(np.log2(f) - 9) - abs(np.log10(reg) - 1)  # peak at (512, 10)

    best, seen = coordinate_search([xs, regs], score)
    assert best == (512, 10.0)
    # From the middle (256, 10): up to 512, one step past it to 1024, then the neighbours
    # of 10 in regularisation; the small-factor and extreme-regularisation ends are skipped.
    assert set(seen) == {(256, 10.0), (512, 10.0), (1024, 10.0), (512, 1.0), (512, 100.0)}


def test_line_search_stops_past_the_peak_and_keeps_grid_order():
    lambdas = [10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0]
    scored = line_search(lambdas, lambda lam: -abs(np.log10(lam) - np.log10(30.0)))
    # From 300 down to 30, one step past it to 10, and 1000 to see that up is worse.
    assert list(scored) == [10.0, 30.0, 100.0, 300.0, 1000.0]
    assert max(scored, key=lambda k: scored[k]) == 30.0


def test_grid_edges_names_the_knobs_at_an_end():
    assert grid_edges({"K=10": 0.1, "K=30": 0.2, "K=100": 0.3}) == ["K"]
    assert grid_edges({"K=10": 0.1, "K=30": 0.3, "K=100": 0.2}) == []
    two = {
        "factors=64, reg=1": 0.1,
        "factors=128, reg=0.1": 0.1,
        "factors=128, reg=1": 0.2,
        "factors=128, reg=10": 0.15,
        "factors=256, reg=1": 0.3,
    }
    assert grid_edges(two) == ["factors"]
    assert grid_edges({"a=1": 0.1, "a=2": 0.2}) == []  # too few settings to speak of edges


def test_edge_step_says_what_the_last_step_gained():
    scored = {
        "factors=256, reg=10": 0.0759,
        "factors=512, reg=10": 0.0766,
        "factors=1024, reg=10": 0.0771,
        "factors=1024, reg=1": 0.0650,
    }
    assert grid_edges(scored) == ["factors"]
    assert edge_step(scored, "factors") == (
        " (validation NDCG@10 0.0771, +0.0005 over factors=512)"
    )


def test_split_context_inverts_each_ease_once_and_matches_the_closed_form(tmp_path):
    write_dataset(tmp_path / "tiny")
    data = load(tmp_path / "tiny")
    embeddings = FakeEmbedder(dim=16).encode([p.name for p in data.products])
    ctx = SplitContext(data, data.valid, embeddings)
    plain, text = ctx.ease(10.0), ctx.ease(10.0, 3.0)
    assert ctx.ease(10.0) is plain and ctx.ease(10.0, 3.0) is text  # cached
    np.testing.assert_allclose(plain, ease_weights(ctx.user_items, lam=10.0), atol=1e-6)
    expected = ease_weights(ctx.user_items, lam=10.0, item_embeddings=embeddings, content_alpha=3.0)
    np.testing.assert_allclose(text, expected, atol=1e-6)
    assert not np.allclose(plain, text)
    # Against numpy's general inverse: the Cholesky route gives the same B.
    gram = np.asarray((ctx.user_items.T @ ctx.user_items).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += 10.0
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)
    np.fill_diagonal(b, 0.0)
    assert plain == pytest.approx(b.astype(np.float32), abs=1e-6)


@pytest.mark.parametrize(("oracle", "kept"), [(True, 5.0), (False, 0.0)])
def test_the_next_item_weight_is_kept_only_when_validation_gains(tmp_path, oracle, kept):
    """A fake sequential model that knows every validation target is kept at the weight
    that puts the target first; one that ranks every target last is dropped (weight 0)."""
    write_dataset(tmp_path / "tiny")
    data = load(tmp_path / "tiny")
    ctx = SplitContext(
        data, data.valid, FakeEmbedder(dim=16).encode([p.name for p in data.products])
    )
    store = ctx.models(CFParams(ease_lambda=10.0), kinds=("ease", "transitions"))
    answers = {tuple(h): t for h, t in zip(data.valid.histories, data.valid.targets, strict=True)}

    def scorer(sequence):
        logits = np.zeros(data.n_items)
        logits[answers[tuple(sequence)]] = 10.0 if oracle else -10.0
        return logits

    models = store.current()
    assert models is not None
    models.next_item = scorer
    # Text alone finds the shopper's group but not always the next item in it (0.85).
    grids = dict(content=(1.0,), popularity=(0.0,), rules=(0.0,), recency_decay=(0.7,))
    without, _, before = tune_hybrid(ctx, store, sequence=(0.0,), track=no_track, **grids)
    weights, _, after = tune_hybrid(
        ctx, store, sequence=(0.0,), track=no_track, next_item=(0.0, 5.0), **grids
    )
    assert without["next_item"] == 0.0 and weights["next_item"] == kept
    assert before < 0.9 and after == (pytest.approx(1.0) if oracle else before)
