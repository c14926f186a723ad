"""Test doubles at our own interfaces: an embedder that needs no model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from backend.recommender.embedder import Vectors

_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    """Bag of hashed words → unit vector: texts sharing words are similar, deterministically.

    ``synonyms`` maps a word to another, so a test can make two different words mean the same.
    """

    def __init__(self, dim: int = 64, synonyms: dict[str, str] | None = None) -> None:
        self._dim = dim
        self.synonyms = synonyms or {}
        self.calls: list[int] = []  # batch sizes seen, to check what was (re)encoded

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        return f"fake-{self._dim}"

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> Vectors:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                word = self.synonyms.get(word, word)
                h = int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")
                out[row, h % self._dim] += 1.0
        return normalise_rows(out)


def normalise_rows(vectors: np.ndarray) -> Vectors:
    """Unit-length rows (zero rows stay zero), so a dot product is a cosine similarity."""
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (out / norms).astype(np.float32, copy=False)
