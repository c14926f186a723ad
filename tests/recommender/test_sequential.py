"""SASRec and GRU4Rec learn a deterministic order; the cache returns the same model."""

from __future__ import annotations

import numpy as np
import pytest

from backend.recommender.sequential import SeqParams, cached_fit, fit, scores, top_lists

N_ITEMS = 8


def chain(start: int, length: int) -> list[int]:
    """A → B → C …: item i is always followed by item i + 1 (mod N_ITEMS)."""
    return [(start + k) % N_ITEMS for k in range(length)]


def sequences(n: int = 96, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [chain(int(rng.integers(N_ITEMS)), int(rng.integers(3, 7))) for _ in range(n)]


SMALL = dict(hidden=16, inner=32, gru_hidden=16, layers=1, heads=1, dropout=0.0, lr=1e-2)


@pytest.mark.parametrize("architecture", ["sasrec", "gru4rec"])
def test_learns_the_next_item_of_a_deterministic_sequence(architecture):
    params = SeqParams(architecture=architecture, batch_size=32, threads=1, **SMALL)
    histories = [chain(s, 3) for s in range(N_ITEMS)]
    targets = [(s + 3) % N_ITEMS for s in range(N_ITEMS)]
    model, info = fit(
        sequences(),
        N_ITEMS,
        params.__class__(**{**_asdict(params), "max_epochs": 30}),
        valid=(histories, targets),
    )
    lists = top_lists(scores(model, histories, params), histories, k=3)
    assert [ranked[0] for ranked in lists] == targets  # every next item ranked first
    assert info.valid_ndcg10 == pytest.approx(1.0) and 1 <= info.epochs <= 30
    assert info.curve and info.seconds > 0


def test_top_lists_exclude_the_history_and_sort_by_score():
    matrix = np.array([[0.9, 0.8, 0.1, 0.5]], dtype=np.float32)
    assert top_lists(matrix, [[0]], k=2) == [[1, 3]]


def test_same_seed_same_model_and_the_cache_returns_it(tmp_path):
    params = SeqParams(batch_size=32, threads=1, max_epochs=2, **SMALL)
    data = sequences(32)
    first, info = cached_fit(tmp_path, "t", data, N_ITEMS, params, epochs=2)
    again, _ = fit(data, N_ITEMS, params, epochs=2)
    cached, cached_info = cached_fit(tmp_path, "t", data, N_ITEMS, params, epochs=2)
    probe = [[0, 1], [5]]
    np.testing.assert_allclose(scores(first, probe, params), scores(again, probe, params))
    np.testing.assert_allclose(scores(first, probe, params), scores(cached, probe, params))
    assert cached_info.cached and not info.cached and cached_info.epochs == 2
    assert len(list(tmp_path.glob("t-sasrec-*.pt"))) == 1


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError):
        SeqParams(architecture="bert4rec")


def _asdict(params: SeqParams) -> dict[str, object]:
    return {name: getattr(params, name) for name in params.__dataclass_fields__}
