"""Keeps the vector store in step with the catalog: per product on writes, in bulk on demand.

A product's vector is recomputed only when its text (or the model) changed: the content hash
stored with each vector says so. A price or stock change rewrites the metadata only. The
bulk rebuild overlaps encoding and writes: a writer thread upserts one batch while the model
encodes the next, so indexing runs close to the model's raw encode rate.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from sqlalchemy.engine import Engine

from backend.db.engine import session_scope
from backend.db.models import IndexState, utcnow
from backend.recommender.embedder import Embedder, content_hash, product_text
from backend.recommender.snapshot import ProductRecord
from backend.recommender.vector_store import COLLECTION, VectorRecord, VectorStore

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


@dataclass
class IndexReport:
    products: int = 0
    encoded: int = 0
    unchanged: int = 0
    metadata_only: int = 0
    deleted: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.encoded / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.products} products: {self.encoded} embedded, {self.unchanged} unchanged "
            f"(skipped by content hash), {self.metadata_only} metadata-only updates, "
            f"{self.deleted} deleted; {self.seconds:.1f} s ({self.rate:.0f} products/s)"
        )


def _text(p: ProductRecord) -> str:
    return product_text(p.name, p.category, p.tags, p.description)


class Indexer:
    def __init__(
        self,
        *,
        embedder: Embedder,
        store: VectorStore,
        db: Engine | None = None,
        batch_size: int = 256,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.db = db
        self.batch_size = batch_size

    def _record(self, p: ProductRecord, vector: object, digest: str) -> VectorRecord:
        return VectorRecord(
            product_id=p.id,
            embedding=vector,  # type: ignore[arg-type]
            category=p.category,
            price=float(p.price),
            in_stock=p.quantity > 0,
            content_hash=digest,
        )

    def sync(self, products: Sequence[ProductRecord]) -> IndexReport:
        """Bring these products' vectors up to date (the per-write path)."""
        started = time.perf_counter()
        stored = self.store.metadata_of([p.id for p in products])
        report = self._apply(products, stored, progress=None)
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, product_ids: Sequence[uuid.UUID]) -> None:
        self.store.delete(product_ids)

    def rebuild(
        self,
        products: Sequence[ProductRecord],
        *,
        force: bool = False,
        progress: Progress | None = None,
    ) -> IndexReport:
        """Index the whole catalog: embed what changed, drop vectors of deleted products."""
        started = time.perf_counter()
        if force:
            self.store.reset()
        stored_hashes = self.store.hashes()
        wanted = {p.id for p in products}
        stale = [pid for pid in stored_hashes if pid not in wanted]
        self.store.delete(stale)
        stored: dict[uuid.UUID, dict[str, object]] = {
            pid: {"content_hash": h} for pid, h in stored_hashes.items()
        }
        report = self._apply(products, stored, progress=progress, full_metadata=False)
        report.deleted = len(stale)
        report.seconds = time.perf_counter() - started
        self._save_state(report)
        return report

    def _apply(
        self,
        products: Sequence[ProductRecord],
        stored: dict[uuid.UUID, dict[str, object]],
        *,
        progress: Progress | None,
        full_metadata: bool = True,
    ) -> IndexReport:
        model = self.embedder.model_id
        report = IndexReport(products=len(products))
        to_embed: list[tuple[ProductRecord, str, bool]] = []  # (product, hash, is new)
        metadata_only: list[VectorRecord] = []
        for p in products:
            digest = content_hash(_text(p), model)
            meta = stored.get(p.id)
            if meta is None or meta.get("content_hash") != digest:
                to_embed.append((p, digest, meta is None))
                continue
            report.unchanged += 1
            if full_metadata and (
                meta.get("category") != p.category
                or meta.get("price") != float(p.price)
                or meta.get("in_stock") != (p.quantity > 0)
            ):
                metadata_only.append(self._record(p, None, digest))
        if progress is not None and report.unchanged:
            progress(report.unchanged)
        self.store.update_metadata(metadata_only)
        report.metadata_only = len(metadata_only)
        report.encoded = self._encode_and_write(to_embed, progress)
        return report

    def _encode_and_write(
        self, items: Sequence[tuple[ProductRecord, str, bool]], progress: Progress | None
    ) -> int:
        """Encode batch k+1 while a writer thread upserts batch k."""
        if not items:
            return 0
        pending: queue.Queue[tuple[list[VectorRecord], list[VectorRecord]] | None] = queue.Queue(
            maxsize=2
        )
        failure: list[BaseException] = []

        def writer() -> None:
            while (batch := pending.get()) is not None:
                if failure:
                    continue
                added, replaced = batch
                try:
                    self.store.upsert(added, new=True)
                    self.store.upsert(replaced)
                    if progress is not None:
                        progress(len(added) + len(replaced))
                except BaseException as exc:  # handed to the caller below
                    failure.append(exc)

        thread = threading.Thread(target=writer, name="index-writer", daemon=True)
        thread.start()
        try:
            for start in range(0, len(items), self.batch_size):
                chunk = items[start : start + self.batch_size]
                vectors = self.embedder.encode([_text(p) for p, _, _ in chunk])
                records = [
                    (self._record(p, v, d), is_new)
                    for (p, d, is_new), v in zip(chunk, vectors, strict=True)
                ]
                pending.put(([r for r, n in records if n], [r for r, n in records if not n]))
                if failure:
                    break
        finally:
            pending.put(None)
            thread.join()
        if failure:
            raise failure[0]
        return len(items)

    def _save_state(self, report: IndexReport) -> None:
        if self.db is None:
            return
        try:
            with session_scope(self.db) as session:
                state = session.get(IndexState, COLLECTION) or IndexState(
                    collection=COLLECTION, model_id=self.embedder.model_id
                )
                state.model_id = self.embedder.model_id
                state.vectors = self.store.count()
                state.last_run_at = utcnow()
                state.last_run = {k: float(v) for k, v in asdict(report).items()}
                session.add(state)
        except Exception:  # bookkeeping must not fail an index run that succeeded
            log.exception("could not record the index state")


def index_state(db: Engine) -> IndexState | None:
    from sqlmodel import Session

    with Session(db) as session:
        return session.get(IndexState, COLLECTION)
