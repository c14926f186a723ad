"""Runs the vector store against a Chroma server (a subprocess of the Chroma server test).

chromadb's HTTP client leaves pooled sockets open when it is dropped; running it in its own
process keeps those leaks out of the test session's warnings.
"""

from __future__ import annotations

import json
import sys
import uuid

import numpy as np

from backend.recommender.vector_store import VectorRecord, VectorStore


def record(vector: list[float], category: str = "Home") -> VectorRecord:
    return VectorRecord(
        product_id=uuid.uuid4(),
        embedding=np.asarray(vector, dtype=np.float32),
        category=category,
        price=10.0,
        in_stock=True,
        content_hash="h",
    )


def main(url: str) -> None:
    store = VectorStore.open(url=url)
    lamp, light, pan = record([1, 0, 0]), record([0.9, 0.1, 0]), record([0, 0, 1], "Kitchen")
    store.upsert([lamp, light, pan])
    count = store.count()
    hits = store.query(np.asarray([1, 0, 0], dtype=np.float32), 2)
    kitchen = store.query(np.asarray([1, 0, 0], np.float32), 3, where={"category": "Kitchen"})
    store.delete([light.product_id])
    replica = VectorStore.open(url=url)  # another API replica sees the same index
    result = {
        "count": count,
        "nearest": [str(h.product_id) for h in hits],
        "expected_nearest": [str(lamp.product_id), str(light.product_id)],
        "top_similarity": hits[0].similarity,
        "kitchen": [str(h.product_id) for h in kitchen],
        "expected_kitchen": [str(pan.product_id)],
        "replica_count": replica.count(),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
