"""The product text, and the one test that loads the real MiniLM model (from the package)."""

from __future__ import annotations

import numpy as np
import pytest

from backend.recommender.embedder import (
    SentenceTransformerEmbedder,
    content_hash,
    default_model_path,
    product_text,
)


def test_product_text_is_built_in_one_place():
    text = product_text("Kettle", "Kitchen", ["steel", "steel", "electric"], " Boils\n fast. ")
    assert text == "Kettle. Kitchen. steel, electric. Boils fast."
    assert product_text("Lamp", "Home", []) == "Lamp. Home"
    assert content_hash(text, "m1") != content_hash(text, "m2")


def test_a_missing_model_folder_fails_clearly(tmp_path):
    embedder = SentenceTransformerEmbedder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        embedder.encode(["x"])


@pytest.mark.slow
def test_real_minilm_from_the_package():
    assert (default_model_path() / "config.json").exists()
    embedder = SentenceTransformerEmbedder()
    assert embedder.model_id.startswith("all-MiniLM-L6-v2@")  # not the folder's name, "model"
    assert not embedder.loaded  # nothing loads until the first encode
    vectors = embedder.encode(
        ["wireless bluetooth headphones", "bluetooth earbuds, wireless", "cast iron skillet"]
    )
    assert embedder.loaded and vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
