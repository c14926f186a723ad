"""Runtime prompt versions, served from the database with a short in-process cache.

The files in ``prompts/`` stay the source of truth in git; the product team's edits are rows
in ``prompt_version``. The newest row per name is in effect (a row without source means "the
file again"). Each process re-reads the newest versions at most every ``ttl_seconds``, so an
edit made through any process is live everywhere within that time and at once in the process
that stored it, without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from backend.db.crud import prompt_versions
from backend.db.models import PromptVersion, as_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredPrompt:
    name: str
    version: int
    source: str | None  # None: the file is in effect again
    author: str
    created_at: datetime
    note: str | None = None

    @classmethod
    def of(cls, row: PromptVersion) -> StoredPrompt:
        return cls(
            name=row.name,
            version=row.version,
            source=row.source,
            author=row.author,
            created_at=as_utc(row.created_at),
            note=row.note,
        )


class PromptStore:
    def __init__(
        self, db: Engine, *, ttl_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._current: dict[str, StoredPrompt] = {}
        self._loaded_at: float | None = None

    def current(self, name: str) -> StoredPrompt | None:
        """The newest stored version of ``name`` (a reset included), or None if never edited."""
        return self._snapshot().get(name)

    def override(self, name: str) -> StoredPrompt | None:
        """The stored version in effect instead of the file, if any."""
        current = self.current(name)
        return current if current is not None and current.source is not None else None

    def history(self, name: str) -> list[StoredPrompt]:
        with Session(self._db) as session:
            return [StoredPrompt.of(r) for r in prompt_versions.history(session=session, name=name)]

    def get(self, name: str, version: int) -> StoredPrompt | None:
        with Session(self._db) as session:
            row = prompt_versions.get(session=session, name=name, version=version)
            return StoredPrompt.of(row) if row else None

    def add(
        self, name: str, source: str | None, *, author: str, note: str | None = None
    ) -> StoredPrompt:
        with Session(self._db, expire_on_commit=False) as session:
            stored = StoredPrompt.of(
                prompt_versions.add(
                    session=session, name=name, source=source, author=author, note=note
                )
            )
        with self._lock:
            self._current[name] = stored  # live here at once, elsewhere within the TTL
        return stored

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = None

    def _snapshot(self) -> dict[str, StoredPrompt]:
        now = self._clock()
        with self._lock:
            if self._loaded_at is not None and now - self._loaded_at < self._ttl:
                return self._current
        try:
            with Session(self._db) as session:
                rows = prompt_versions.latest_per_name(session=session)
            fresh = {name: StoredPrompt.of(row) for name, row in rows.items()}
        except SQLAlchemyError:
            # Serving the last known versions (or the files) beats failing every render.
            log.warning("prompt versions unreadable; serving the last known ones", exc_info=True)
            fresh = None
        with self._lock:
            if fresh is not None:
                self._current = fresh
            self._loaded_at = now
            return self._current
