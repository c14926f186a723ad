"""The served next-item model (``next_item.NumpySASRec``): saved as plain arrays and loaded
without torch, with the torch model's scores; a version saved before that format (a .pt)
is read through torch once and converted; damaged files are refused.

Known answers on the deterministic chains of test_sequential: after item i comes i + 1.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.recommender import cf
from backend.recommender.next_item import FORMAT, NumpySASRec
from backend.recommender.sequential import (
    NextItemScorer,
    SASRec,
    SeqParams,
    fit,
    read_legacy,
    scores,
    to_numpy,
)
from tests.fresh_process import fresh_python, last_json

from .test_sequential import N_ITEMS, SMALL, chain, sequences

HISTORIES = [chain(s, 3) for s in range(N_ITEMS)] + [[4], chain(1, 9)]  # 9 > max_len
PARAMS = SeqParams(
    batch_size=32, threads=1, text="add", max_len=6, **{**SMALL, "layers": 2, "heads": 2}
)


@pytest.fixture(scope="module")
def trained() -> SASRec:
    """SASRec with the items' text added, trained until it knows every chain's next item."""
    vectors = np.random.default_rng(1).normal(size=(N_ITEMS, 12)).astype(np.float32)
    model, _ = fit(sequences(), N_ITEMS, PARAMS, epochs=30, text=vectors)
    assert isinstance(model, SASRec)
    return model


def expected(model: SASRec) -> np.ndarray:
    """The torch model's scores for HISTORIES (its batched forward pass)."""
    return scores(model, HISTORIES, PARAMS)


def test_saved_and_loaded_it_scores_as_the_torch_model(trained, tmp_path):
    path = tmp_path / "m.npz"
    to_numpy(trained, PARAMS, epochs=30, seconds=1.234).save(path)
    loaded = NumpySASRec.load(path)
    got = np.stack([loaded(h) for h in HISTORIES])
    np.testing.assert_allclose(got, expected(trained), rtol=1e-5, atol=1e-5)
    assert [int(np.argmax(row)) for row in got[:N_ITEMS]] == [
        (s + 3) % N_ITEMS for s in range(N_ITEMS)
    ]  # the known answer: what follows each chain
    assert loaded.n_items == N_ITEMS and loaded([]).tolist() == [0.0] * N_ITEMS
    assert loaded.meta["params"] == asdict(PARAMS)
    assert (loaded.meta["epochs"], loaded.meta["seconds"]) == (30, 1.23)
    assert loaded.meta["format"] == FORMAT
    # Exactly the arrays the forward pass uses: the item table with the text projection
    # added in, no padding row, no text vectors and no projection.
    with np.load(path) as f:
        names, items = set(f.files), f["items"]
    assert not any("text" in n for n in names)
    assert items.shape == (N_ITEMS, PARAMS.hidden)
    assert len(names) == 1 + 4 + 12 * PARAMS.layers  # meta, items/positions/norm, layers
    assert not list(tmp_path.glob("*.tmp"))  # written aside and renamed


def test_the_in_memory_scorer_serves_the_same_arrays(trained):
    scorer = NextItemScorer(trained, PARAMS)
    served = to_numpy(trained, PARAMS)
    for history in HISTORIES:
        np.testing.assert_array_equal(scorer(history), served(history))


def run(code: str, *args: str) -> dict:
    """``code`` in a fresh interpreter (the project's modules, nothing else imported); it
    prints one JSON object."""
    result: dict = last_json(fresh_python(code, *args))
    return result


# What a serving process does with a saved version: cf.load, then score one shopper.
LOAD_AND_SCORE = """
import json, sys
from pathlib import Path
from backend.recommender.cf import load
models = load(Path(sys.argv[1]))
scorer = models.next_item
print(json.dumps({
    "error": models.next_item_error,
    "scores": [scorer(json.loads(h)).tolist() for h in sys.argv[2:]] if scorer else None,
    "torch": "torch" in sys.modules,
}))
"""


def cf_models(scorer: NumpySASRec | None = None) -> cf.CFModels:
    return cf.CFModels(
        version="v1", item_ids=[uuid.uuid4() for _ in range(N_ITEMS)], next_item=scorer
    )


def test_a_process_loads_and_scores_a_saved_version_without_importing_torch(trained, tmp_path):
    path = tmp_path / "cf-v1.npz"
    cf.save(cf_models(to_numpy(trained, PARAMS)), path)
    assert cf.next_item_path(path).exists() and not list(tmp_path.glob("*.pt"))
    out = run(LOAD_AND_SCORE, str(path), *map(json.dumps, HISTORIES))
    assert out["error"] is None and out["torch"] is False
    np.testing.assert_allclose(out["scores"], expected(trained), rtol=1e-5, atol=1e-5)


def save_legacy(model: SASRec, params: SeqParams, path: Path) -> None:
    """A version as the code before the .npz format saved it: the CF models' .npz naming
    ``cf-<version>-sequential.pt``, which holds ``torch.save`` of the state dict (text
    projection left out) and the item table, with the settings in a .json beside it."""
    scorer = NextItemScorer(model, params)
    weights = path.with_name(f"{path.stem}-sequential.pt")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("text.")}
    meta = {
        "params": asdict(params),
        "n_items": scorer.n_items,
        "epochs": 0,
        "seconds": 0.0,
        "table_sha256": hashlib.sha256(scorer.table.numpy().tobytes()).hexdigest(),
    }
    torch.save({"state": state, "table": scorer.table}, weights)
    weights.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    cf.save(cf_models(), path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(path, **arrays, next_item=np.array([weights.name]))


def test_a_version_saved_as_pt_is_read_through_torch_once_and_then_without(trained, tmp_path):
    path = tmp_path / "cf-v1.npz"
    save_legacy(trained, PARAMS, path)
    converted = tmp_path / "cf-v1-sequential.npz"
    assert not converted.exists()

    first = run(LOAD_AND_SCORE, str(path), *map(json.dumps, HISTORIES))
    assert first["error"] is None and first["torch"] is True  # the one read through torch
    np.testing.assert_allclose(first["scores"], expected(trained), rtol=1e-5, atol=1e-5)
    assert converted.exists()

    again = run(LOAD_AND_SCORE, str(path), *map(json.dumps, HISTORIES))
    assert again["error"] is None and again["torch"] is False
    assert again["scores"] == first["scores"]
    assert (tmp_path / "cf-v1-sequential.pt").exists()  # kept: an older process may read it


def test_a_damaged_pt_costs_the_next_item_source_only(trained, tmp_path):
    path = tmp_path / "cf-v1.npz"
    save_legacy(trained, PARAMS, path)
    (tmp_path / "cf-v1-sequential.pt").write_bytes(b"not a torch file")
    models = cf.load(path)
    assert models.n_items == N_ITEMS and models.next_item is None
    assert models.next_item_error is not None and "cf-v1-sequential.pt" in models.next_item_error
    assert not (tmp_path / "cf-v1-sequential.npz").exists()


def test_the_legacy_reader_checks_the_table_digest(trained, tmp_path):
    path = tmp_path / "cf-v1.npz"
    save_legacy(trained, PARAMS, path)
    meta_path = tmp_path / "cf-v1-sequential.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "table_sha256": "0" * 64}))
    with pytest.raises(ValueError, match="digest"):
        read_legacy(tmp_path / "cf-v1-sequential.pt")


def rewrite(path: Path, change) -> None:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    with path.open("wb") as out:
        np.savez(out, **arrays)


@pytest.mark.parametrize(
    "damage",
    ["flipped byte", "truncated", "array missing", "wrong shape", "float64", "other format"],
)
def test_a_damaged_file_is_refused_when_loaded(trained, tmp_path, damage):
    path = tmp_path / "m.npz"
    to_numpy(trained, PARAMS).save(path)
    if damage == "flipped byte":  # inside the item table's data: its checksum fails
        data = bytearray(path.read_bytes())
        with np.load(path) as f:
            at = data.index(f["items"].tobytes()[:16]) + 8
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "array missing":
        rewrite(path, lambda a: a.pop("layer1.ff2"))
    elif damage == "wrong shape":
        rewrite(path, lambda a: a.update({"layer0.in_proj": a["layer0.in_proj"][:, :-1]}))
    elif damage == "float64":
        rewrite(path, lambda a: a.update({"items": a["items"].astype(np.float64)}))
    else:
        meta = {"format": "sasrec-numpy/0", "heads": 1, "eps": 1e-12}
        rewrite(path, lambda a: a.update({"meta": np.array(json.dumps(meta))}))
    with pytest.raises(ValueError):
        NumpySASRec.load(path)
