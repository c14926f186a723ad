"""The evaluation end to end on a tiny dataset in the RecBole format, with the fake embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.recommender.evaluation.dataset import load, parse_item
from backend.recommender.evaluation.report import as_json, chart, markdown
from backend.recommender.evaluation.runner import BASELINES, Grid, evaluate
from tests.recommender.fakes import FakeEmbedder

TEXTS = {
    "A0": "Red Drill Bit Set. Industrial & Scientific Power Tools Drill Bits. Acme. ",
    "A1": "Red Drill Bit Case. Industrial & Scientific Power Tools Drill Bits. Acme. ",
    "A2": "Red Drill Stand. Industrial & Scientific Power Tools Drill Stands. Acme. ",
    "A3": "Red Drill Press. Industrial & Scientific Power Tools Drill Presses. Acme. ",
    "A4": "Blue Sanding Roll 80 Grit. Industrial & Scientific Abrasives Sanding Rolls. Grit. ",
    "A5": "Blue Sanding Roll 120 Grit. Industrial & Scientific Abrasives Sanding Rolls. Grit. ",
    "A6": "Blue Sanding Block. Industrial & Scientific Abrasives Sanding Blocks. Grit. ",
    "A7": "Blue Sanding Disc. Industrial & Scientific Abrasives Sanding Discs. Grit. ",
    "A8": "Odd item without a category path",
}
GROUPS = [(0, 1, 2, 3), (4, 5, 6, 7)]


def write_dataset(folder: Path, users: int = 32) -> None:
    """Each user buys the four items of one group, starting at a different one."""
    folder.mkdir()
    (folder / "Tiny.item2index").write_text("".join(f"{a}\t{i}\n" for i, a in enumerate(TEXTS)))
    (folder / "Tiny.user2index").write_text("".join(f"U{u}\t{u}\n" for u in range(users)))
    (folder / "Tiny.text").write_text(
        "item_id:token\ttext:token_seq\n" + "".join(f"{a}\t{t}\n" for a, t in TEXTS.items())
    )
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    valid, test = [header], [header]
    for u in range(users):
        group, start = GROUPS[u % 2], (u // 2) % 4
        seq = [group[(start + k) % 4] for k in range(4)]
        valid.append(f"{u}\t{seq[0]} {seq[1]}\t{seq[2]}\n")
        test.append(f"{u}\t{seq[0]} {seq[1]} {seq[2]}\t{seq[3]}\n")
    (folder / "Tiny.valid.inter").write_text("".join(valid))
    (folder / "Tiny.test.inter").write_text("".join(test))
    (folder / "Tiny.train.inter").write_text(header)


def test_parse_item_splits_title_path_and_brand():
    p = parse_item("X1", TEXTS["A4"])
    assert p.name == "Blue Sanding Roll 80 Grit"
    assert p.category == "Industrial & Scientific Abrasives Sanding Rolls"
    assert p.tags[0] == "grit" and "sanding" in p.tags
    odd = parse_item("X2", TEXTS["A8"])
    assert (odd.name, odd.category, odd.tags) == (
        "Odd item without a category path",
        "Other",
        ("other",),
    )


def test_loader_reads_the_splits(tmp_path):
    write_dataset(tmp_path / "tiny")
    data = load(tmp_path / "tiny")
    assert data.n_items == 9 and len(data.valid.targets) == 32
    assert data.valid.histories[1] == [4, 5] and data.valid.targets[1] == 6


def test_evaluation_end_to_end(tmp_path):
    write_dataset(tmp_path / "tiny")
    grid = Grid(
        ease_lambda=(1.0, 10.0),
        ease_content_alpha=(1.0,),
        knn_neighbours=(5,),
        als_factors=(4,),
        content=(0.0, 0.5),
        popularity=(0.0,),
        rules=(0.0,),
        sequence=(0.0, 0.2),
        recency_decay=(0.7,),
        als_regularization=(0.1,),
        sequential=("sasrec", "gru4rec"),
        seq_max_epochs=4,
    )
    messages: list[str] = []
    report = evaluate(
        tmp_path / "tiny", FakeEmbedder(dim=512), grid=grid, cache_dir=tmp_path, say=messages.append
    )
    names = [r.strategy for r in report.rows]
    assert set(BASELINES) <= set(names) and "hybrid" in names and "embedding" in names
    assert all(r.baseline == (r.strategy in BASELINES) for r in report.rows)
    # The last item of a group is predictable from co-purchase and text: both nail it.
    assert report.row("ease").test.hr10 == pytest.approx(1.0)
    assert report.row("hybrid").test.hr10 == pytest.approx(1.0)
    assert report.row("popularity").test.ndcg10 < report.row("hybrid").test.ndcg10
    assert report.chosen["ease"] in {"lambda=1", "lambda=10"}
    assert list(tmp_path.glob("Tiny-*.npy"))  # embeddings cached for the next run
    text = markdown(report, "shopwise evaluate --dataset tiny")
    assert "| hybrid | ours |" in text and "shopwise evaluate --dataset tiny" in text
    assert "95% CI" in text and "Wilcoxon" in text
    body = json.loads(as_json(report, "shopwise evaluate --dataset tiny"))
    hybrid = next(r for r in body["rows"] if r["strategy"] == "hybrid")
    low, high = hybrid["test_ci95"]["ndcg10"]
    assert low <= hybrid["test_ndcg10"] <= high
    assert body["paired_test"]["a"] == "hybrid" and body["grids"]["ease"]
    # Both SASRecs cached: the baseline row's and the hybrid's, with the items' text.
    assert len(list((tmp_path / "sequential").glob("Tiny-valid-sasrec-*.pt"))) == 2
    assert "next_item" in report.hybrid_weights  # tried on validation, kept or not
    assert "next-item source was" in text
    chart(report, tmp_path / "evaluation.png")
    assert (tmp_path / "evaluation.png").stat().st_size > 1000
