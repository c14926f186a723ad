"""The hybrid's ``next_item`` source: a sequential model's next-item scores, known answers."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
import torch

from backend.recommender import sequential
from backend.recommender.cf import CFModels, ModelStore
from backend.recommender.profile import InteractionRecord
from backend.recommender.sequential import NextItemScorer, SeqParams, fit, scores, top_lists
from backend.recommender.snapshot import CatalogSnapshot
from backend.recommender.strategies import BlendConfig, BlendStrategy, RecommendRequest
from backend.recommender.strategies.sources import item_sequence, next_item_scores

from .conftest import CATALOG, CHARGER, KETTLE, NOW, SKILLET, SPEAKER, event, product
from .test_sequential import N_ITEMS, SMALL, chain, sequences


class AfterCharger:
    """A fake model: after a charger comes the skillet, then the kettle; it records what it
    was asked, to check the order it is given."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self.index = snapshot.index
        self.n = len(snapshot)
        self.asked: list[list[int]] = []

    def __call__(self, sequence):
        self.asked.append(list(sequence))
        logits = np.full(self.n, -4.0)
        if sequence and sequence[-1] == self.index[CHARGER.id]:
            logits[self.index[SKILLET.id]] = 2.0
            logits[self.index[KETTLE.id]] = 0.0
        return logits


def models_with(snapshot: CatalogSnapshot, scorer) -> CFModels:
    return CFModels(version="t", item_ids=[p.id for p in snapshot.products], next_item=scorer)


def test_scores_are_probabilities_relative_to_the_best_at_temperature_two():
    models = CFModels(version="t", item_ids=[], next_item=lambda _s: np.array([0.0, 2.0, -2.0]))
    got = next_item_scores(models, [0])
    assert got is not None
    np.testing.assert_allclose(got, [math.exp(-1.0), 1.0, math.exp(-2.0)])
    assert next_item_scores(models, []) is None  # nothing to go on
    assert next_item_scores(CFModels(version="t", item_ids=[]), [0]) is None  # no model


def test_the_sequence_is_oldest_first_with_repeats_and_only_known_items(snapshot):
    i = snapshot.index
    unknown = product("Not in the catalogue", "Home", [])
    request = RecommendRequest(
        interactions=[
            event(CHARGER, "purchase", days_ago=1),
            event(unknown, "view", days_ago=2),
            event(SPEAKER, "view", days_ago=3),
            InteractionRecord(action="view", product_id=None, created_at=NOW - timedelta(days=4)),
            event(CHARGER, "view", days_ago=5),
        ],
        top_n=3,
        now=NOW,
    )
    assert item_sequence(snapshot, request) == [i[CHARGER.id], i[SPEAKER.id], i[CHARGER.id]]


def test_hybrid_with_the_next_item_source_recommends_what_the_model_predicts(snapshot):
    scorer = AfterCharger(snapshot)
    strategy = BlendStrategy(
        "hybrid", BlendConfig(weights={"next_item": 1.0}), ModelStore(models_with(snapshot, scorer))
    )
    request = RecommendRequest(
        interactions=[event(SPEAKER, "view", days_ago=2), event(CHARGER, "purchase")],
        top_n=2,
        now=NOW,
    )
    recs = strategy.recommend(snapshot, request)
    assert [snapshot.products[r.index] for r in recs] == [SKILLET, KETTLE]
    assert recs[0].evidence.sources[0].name == "next_item"
    assert strategy.rank(snapshot, request).tolist() == [r.index for r in recs]
    assert scorer.asked[0] == [snapshot.index[SPEAKER.id], snapshot.index[CHARGER.id]]


def test_realigned_models_translate_the_sequence_and_the_scores():
    ids = [p.id for p in CATALOG]
    asked: list[list[int]] = []

    def scorer(sequence):
        asked.append(list(sequence))
        return np.arange(len(ids), dtype=np.float64)  # item i scores i, in the model's order

    flipped = CFModels(version="t", item_ids=ids, next_item=scorer).aligned(
        1, lambda: list(reversed(ids))
    )
    assert flipped.next_item is not None
    out = flipped.next_item([0, 1])  # the flipped order's 0 and 1 are the model's 7 and 6
    assert asked == [[len(ids) - 1, len(ids) - 2]]
    np.testing.assert_allclose(out, np.arange(len(ids))[::-1])


def test_one_sequence_at_a_time_scores_as_the_batch_does():
    params = SeqParams(batch_size=32, threads=1, max_epochs=2, **SMALL)
    model, _ = fit(sequences(32), N_ITEMS, params, epochs=2)
    histories = [[0, 1], [5], chain(2, 6)]
    batch = scores(model, histories, params)
    scorer = NextItemScorer(model, params)
    for history, row in zip(histories, batch, strict=True):
        np.testing.assert_allclose(scorer(history), row, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("text", ["add", "init"])
def test_sasrec_with_the_items_text_learns_the_next_item(text):
    params = SeqParams(batch_size=32, threads=1, max_epochs=30, text=text, **SMALL)
    vectors = np.random.default_rng(1).normal(size=(N_ITEMS, 12)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # unit length, as MiniLM's
    histories = [chain(s, 3) for s in range(N_ITEMS)]
    targets = [(s + 3) % N_ITEMS for s in range(N_ITEMS)]
    model, info = fit(sequences(), N_ITEMS, params, valid=(histories, targets), text=vectors)
    lists = top_lists(scores(model, histories, params), histories, k=3)
    assert [ranked[0] for ranked in lists] == targets
    assert info.valid_ndcg10 == pytest.approx(1.0)


def test_text_modes_need_the_vectors():
    with pytest.raises(ValueError):
        SeqParams(text="bert")
    with pytest.raises(ValueError):
        fit(sequences(8), N_ITEMS, SeqParams(text="add", **SMALL), epochs=1)


def test_a_request_scores_with_one_torch_thread_and_leaves_the_setting_as_it_was():
    import torch

    from backend.recommender.sequential import set_threads

    params = SeqParams(batch_size=32, threads=1, max_epochs=1, **SMALL)
    model, _ = fit(sequences(8), N_ITEMS, params, epochs=1)
    scorer = NextItemScorer(model, params)
    seen: list[int] = []
    real = scorer.model

    def recording(seq, table):
        seen.append(torch.get_num_threads())
        return real(seq, table)

    scorer.model = recording
    previous = set_threads(2)
    try:
        scorer([0, 1])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        set_threads(previous)


def test_large_catalogues_train_on_fewer_sequences_per_batch():
    from backend.recommender.sequential import batch_for

    assert batch_for(4_385, SeqParams()) == 128  # the evaluation's catalogue: unchanged
    assert batch_for(100_000, SeqParams()) == 12
    assert batch_for(10_000_000, SeqParams()) == 8


def test_a_time_budget_stops_training_after_the_epoch_that_reaches_it():
    params = SeqParams(batch_size=32, threads=1, **SMALL)
    _, info = fit(sequences(32), N_ITEMS, params, epochs=50, max_seconds=1e-9)
    assert info.epochs == 1  # at least one epoch, then no more
    _, info = fit(sequences(32), N_ITEMS, params, epochs=3, max_seconds=None)
    assert info.epochs == 3


@pytest.mark.parametrize("seed", range(6))
def test_the_numpy_forward_pass_equals_the_torch_model(seed):
    """Serving scores with a numpy copy of SASRec's arithmetic; on random models (with and
    without text, any depth and head count) and random sequences (one item up to longer
    than ``max_len``) it must give torch's logits."""
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(5, 60))
    params = sequential.SeqParams(
        hidden=8 * int(rng.integers(1, 5)),
        heads=int(rng.choice([1, 2, 4])),
        inner=int(rng.integers(8, 40)),
        layers=int(rng.integers(1, 4)),
        max_len=int(rng.integers(3, 12)),
        text="add" if seed % 2 else "none",
    )
    text = rng.normal(size=(n_items, 6)).astype(np.float32) if seed % 2 else None
    torch.manual_seed(seed)
    scorer = sequential.NextItemScorer(sequential.build_model(n_items, params, text), params)
    for _ in range(10):
        sequence = list(rng.integers(0, n_items, int(rng.integers(1, params.max_len + 4))))
        tail = np.asarray(sequence[-params.max_len :], dtype=np.int64) + 1
        expected = scorer._logits(tail)
        np.testing.assert_allclose(scorer(sequence), expected, rtol=1e-4, atol=1e-4)
