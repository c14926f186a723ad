"""Retrieval rankers: keyword overlap offline, embeddings when the catalog has vectors."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from backend.chat.ranking import KeywordRanker, SemanticRanker
from backend.recommender.snapshot import CatalogSnapshot
from tests.recommender.conftest import CATALOG, EARBUDS, HEADPHONES, SKILLET


class BagOfWordsEmbedder:
    """Deterministic fake: one hashed dimension per word, L2-normalised."""

    dim = 64
    model_id = "fake-bow"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(".", " ").replace(",", " ").split():
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def snapshot(with_vectors: bool) -> tuple[CatalogSnapshot, BagOfWordsEmbedder]:
    snap = CatalogSnapshot.build(CATALOG, version="t")
    embedder = BagOfWordsEmbedder()
    if with_vectors:
        texts = [f"{p.name} {p.category} {' '.join(p.tags)}" for p in CATALOG]
        snap.embeddings = embedder.encode(texts)
    return snap, embedder


def test_keyword_ranker_weights_rare_words_and_reads_plurals() -> None:
    snap, _ = snapshot(False)
    scores = KeywordRanker().scores(snap, "skillets")
    assert scores[snap.index[SKILLET.id]] == 1.0
    assert scores[snap.index[EARBUDS.id]] == 0.0


def test_semantic_ranker_uses_vectors_and_falls_back_without_them() -> None:
    snap, embedder = snapshot(True)
    ranker = SemanticRanker(embedder)
    scores = ranker.scores(snap, "audio wireless")
    assert scores[snap.index[HEADPHONES.id]] > scores[snap.index[SKILLET.id]]
    ranker.scores(snap, "Audio  wireless")  # the query vector is cached
    assert embedder.calls == 2  # one for the catalog, one for the query

    bare, embedder = snapshot(False)
    keyword_only = SemanticRanker(embedder).scores(bare, "audio")
    assert embedder.calls == 0
    assert np.array_equal(keyword_only, KeywordRanker().scores(bare, "audio"))


def test_a_failing_embedder_degrades_to_keywords() -> None:
    snap, embedder = snapshot(True)

    def broken(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        raise RuntimeError("model file missing")

    embedder.encode = broken  # type: ignore[method-assign]
    scores = SemanticRanker(embedder).scores(snap, "skillet")
    assert np.array_equal(scores, KeywordRanker().scores(snap, "skillet"))
