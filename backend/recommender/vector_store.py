"""Product vectors in ChromaDB: the only module that imports chromadb.

Embedded ``PersistentClient`` by default, ``HttpClient`` when ``CHROMA_URL`` is set. We always
pass embeddings ourselves (``embedding_function=None``): the embedder module owns the model.
Each record carries the product's category, price and stock as metadata plus the content hash
of the text it was embedded from, so re-indexing skips products whose text did not change.

Chroma's filtered queries (``where=``) are slow at scale (~128 ms at 100k vectors against
~3.5 ms without), so the search service over-fetches without a filter and filters with the
engine snapshot's arrays instead; ``query`` still accepts ``where`` for the benchmark.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt

from backend.observability.dependencies import DependencyMonitor, describe

COLLECTION = "products"
COUNT_TTL_SECONDS = 5.0
GET_PAGE = 5000


@dataclass(frozen=True, slots=True)
class VectorRecord:
    """One product as stored in the index."""

    product_id: uuid.UUID
    embedding: npt.NDArray[np.float32]
    category: str
    price: float
    in_stock: bool
    content_hash: str


@dataclass(frozen=True, slots=True)
class VectorHit:
    product_id: uuid.UUID
    similarity: float  # cosine similarity, 1 = same direction


class VectorStoreError(RuntimeError):
    """Chroma failed or is unreachable; callers report it instead of a stack trace."""


class VectorStore:
    """A cosine-space Chroma collection of product vectors.

    Every Chroma failure (server down, folder corrupt) comes out as ``VectorStoreError``,
    is reported to ``monitor`` and kept in ``last_error`` until a call succeeds again, so
    callers degrade (exact search over the snapshot, recommendations without vectors) and
    /health says why.
    """

    location: str = ""
    path: Path | None = None  # the embedded store's folder (None for a server)
    # Vectors the last index run stored: when positive, a missing folder is an error (the
    # index was lost) rather than an index not built yet.
    expected_vectors: int = 0

    def __init__(
        self,
        connect: Callable[[], Any],
        collection: str = COLLECTION,
        monitor: DependencyMonitor | None = None,
    ) -> None:
        self._connect = connect
        self._client_obj: Any = None
        self._name = collection
        self._collection: Any = None
        self._lock = threading.Lock()
        self._count: tuple[int, float] | None = None
        self.monitor = monitor
        self.last_error: str | None = None

    @classmethod
    def open(
        cls,
        *,
        path: Path | None = None,
        url: str | None = None,
        collection: str = COLLECTION,
        monitor: DependencyMonitor | None = None,
    ) -> VectorStore:
        """A store for a server when ``url`` is given, else an embedded one under ``path``.

        Nothing connects until first use, so building the app stays fast and offline.
        """
        if not url and path is None:
            raise ValueError("a path or a url is required")

        def connect() -> Any:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            settings = ChromaSettings(anonymized_telemetry=False, allow_reset=True)
            try:
                if url:
                    parsed = urlparse(url)
                    return chromadb.HttpClient(
                        host=parsed.hostname or "localhost",
                        port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                        ssl=parsed.scheme == "https",
                        settings=settings,
                    )
                assert path is not None
                path.mkdir(parents=True, exist_ok=True)
                return chromadb.PersistentClient(path=str(path), settings=settings)
            except Exception as exc:
                if path is not None and not url:
                    _forget_shared_system(path)  # a half-started system would be reused
                raise VectorStoreError(f"cannot open Chroma: {exc}") from exc

        store = cls(connect, collection, monitor)
        store.location = url or str(path)
        store.path = None if url else path
        return store

    @property
    def folder_missing(self) -> bool:
        """The embedded index was built but its folder is gone (deleted under us)."""
        return self.path is not None and self.expected_vectors > 0 and not self.path.exists()

    @contextmanager
    def _calling(self, *, reading: bool = False) -> Iterator[None]:
        try:
            if reading and self.folder_missing:
                raise VectorStoreError(
                    f"the index folder {self.path} is missing ({self.expected_vectors} vectors "
                    "expected); run `shopwise index`"
                )
            yield
        except Exception as exc:
            error = exc if isinstance(exc, VectorStoreError) else VectorStoreError(describe(exc))
            self.last_error = str(error)
            self._drop_client()  # reopened on the next call: a repaired folder is picked up
            if self.monitor is not None:
                self.monitor.failure("vectors", error)
            if error is exc:
                raise
            raise error from exc
        self.last_error = None

    @property
    def _client(self) -> Any:
        if self._client_obj is None:
            with self._lock:
                if self._client_obj is None:
                    self._client_obj = self._connect()
        return self._client_obj

    def _drop_client(self) -> None:
        with self._lock:
            client, self._client_obj = self._client_obj, None
            self._collection = None
            self._count = None
        close = getattr(client, "close", None)
        if close is not None:
            try:
                close()  # releases Chroma's shared system for this path
            except Exception:  # already broken; nothing more to release
                pass
        if client is not None and self.path is not None:
            _forget_shared_system(self.path)

    @property
    def connected(self) -> bool:
        return self._client_obj is not None

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = self._client.get_or_create_collection(
                self._name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collection

    @property
    def max_batch(self) -> int:
        try:
            return int(self._client.get_max_batch_size())
        except Exception:  # older servers: be conservative
            return 1000

    def count(self) -> int:
        with self._calling(reading=True):
            self._count = (int(self.collection.count()), time.monotonic())
        return self._count[0]

    def approximate_count(self) -> int:
        """The count, re-read at most every few seconds (a round trip each): for caps only."""
        if self._count is None or time.monotonic() - self._count[1] > COUNT_TTL_SECONDS:
            return self.count()
        return self._count[0]

    def upsert(self, records: Sequence[VectorRecord], *, new: bool = False) -> None:
        """Write vectors; ``new=True`` (ids known to be absent) skips Chroma's existence check."""
        if not records:
            return
        self._count = None
        step = self.max_batch
        write = self.collection.add if new else self.collection.upsert
        for start in range(0, len(records), step):
            chunk = records[start : start + step]
            write(
                ids=[str(r.product_id) for r in chunk],
                embeddings=np.stack([r.embedding for r in chunk]).astype(np.float32),
                metadatas=[
                    {
                        "category": r.category,
                        "price": float(r.price),
                        "in_stock": bool(r.in_stock),
                        "content_hash": r.content_hash,
                    }
                    for r in chunk
                ],
            )

    def update_metadata(self, records: Sequence[VectorRecord]) -> None:
        """Price or stock changed but not the text: keep the vector, refresh the metadata."""
        if not records:
            return
        self.collection.update(
            ids=[str(r.product_id) for r in records],
            metadatas=[
                {
                    "category": r.category,
                    "price": float(r.price),
                    "in_stock": bool(r.in_stock),
                    "content_hash": r.content_hash,
                }
                for r in records
            ],
        )

    def metadata_of(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """Stored metadata of some products (missing ones are absent from the answer)."""
        out: dict[uuid.UUID, dict[str, Any]] = {}
        step = max(1, min(self.max_batch, GET_PAGE))
        for start in range(0, len(product_ids), step):
            chunk = [str(p) for p in product_ids[start : start + step]]
            got = self.collection.get(ids=chunk, include=["metadatas"])
            for pid, meta in zip(got["ids"], got.get("metadatas") or [], strict=False):
                out[uuid.UUID(pid)] = dict(meta or {})
        return out

    def delete(self, product_ids: Sequence[uuid.UUID]) -> None:
        if product_ids:
            self._count = None
            self.collection.delete(ids=[str(p) for p in product_ids])

    def hashes(self) -> dict[uuid.UUID, str]:
        """Content hash of every stored product (what ``index`` compares against)."""
        out: dict[uuid.UUID, str] = {}
        for ids, metas, _ in self._pages(include=["metadatas"]):
            for pid, meta in zip(ids, metas, strict=True):
                out[uuid.UUID(pid)] = str((meta or {}).get("content_hash", ""))
        return out

    def embeddings(self) -> tuple[list[uuid.UUID], npt.NDArray[np.float32]]:
        """Every stored vector, for the engine snapshot's in-memory matrix."""
        ids: list[uuid.UUID] = []
        chunks: list[npt.NDArray[np.float32]] = []
        with self._calling(reading=True):
            for page_ids, _, vectors in self._pages(include=["embeddings"]):
                ids.extend(uuid.UUID(p) for p in page_ids)
                chunks.append(np.asarray(vectors, dtype=np.float32))
        if not chunks:
            return [], np.zeros((0, 0), dtype=np.float32)
        return ids, np.concatenate(chunks)

    def _pages(self, include: list[str]) -> Iterator[tuple[list[str], list[Any], Any]]:
        offset = 0
        while True:
            got = self.collection.get(include=include, limit=GET_PAGE, offset=offset)
            ids = list(got["ids"])
            if not ids:
                return
            metas = got.get("metadatas") or [None] * len(ids)
            vectors = got.get("embeddings")
            yield ids, list(metas), vectors if vectors is not None else []
            offset += len(ids)

    def query(
        self,
        embedding: npt.NDArray[np.float32],
        n: int,
        *,
        where: dict[str, Any] | None = None,
    ) -> list[VectorHit]:
        """Nearest products by cosine similarity (approximate: Chroma's HNSW index)."""
        total = self.approximate_count()
        if total == 0 or n <= 0:
            return []
        with self._calling(reading=True):
            got = self.collection.query(
                query_embeddings=np.asarray(embedding, dtype=np.float32).reshape(1, -1),
                n_results=min(n, total),
                where=where,
                include=["distances"],
            )
        ids = got["ids"][0]
        distances = got["distances"][0] if got.get("distances") else [0.0] * len(ids)
        return [
            VectorHit(uuid.UUID(pid), 1.0 - float(d)) for pid, d in zip(ids, distances, strict=True)
        ]

    def reset(self) -> None:
        """Drop every vector (``shopwise index --rebuild``)."""
        try:
            self._client.delete_collection(self._name)
        except Exception:  # not there yet
            pass
        self._collection = None
        self._count = None


def _forget_shared_system(path: Path) -> None:
    """Drop Chroma's process-wide cached system for ``path`` so the next client starts a
    fresh one. Chroma keeps a system in its cache even when starting it failed (a corrupt
    folder), and would hand that broken system to every later client of the same path."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient
    except ImportError:  # another Chroma layout: nothing cached to forget
        return
    key = str(path)
    SharedSystemClient._identifier_to_system.pop(key, None)
    getattr(SharedSystemClient, "_identifier_to_refcount", {}).pop(key, None)
