"""How many calls the model server takes at once, shared by everything that calls it.

A local llama.cpp server answers one request at a time (``LLM_CONCURRENCY``). The explanation
queue's workers wait for a slot; a live explanation stream waits a moment and otherwise
answers with the template; the chat's model calls take one too. So open streams can neither
starve the queue nor pile requests up on the server.

In one process the slots are a semaphore (``LocalModelSlots``). With Redis, the API's
processes and `shopwise worker` share one count (``backend.infra.model_slots``), or two
processes would each send ``LLM_CONCURRENCY`` calls to a server that takes that many in all.
A slot is a ``Lease``: the thread that releases it need not be the one that took it (a
streamed response is read on whichever thread the server picks for each chunk).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol


class Lease(Protocol):
    def release(self) -> None:
        """Give the slot back; a second call does nothing."""


class ModelSlots(Protocol):
    concurrency: int

    def acquire(self, timeout: float | None = None) -> Lease | None:
        """A slot, waiting at most ``timeout`` seconds (None: as long as it takes); None if
        none came free in time."""

    def where(self) -> str:
        """Where the count is kept, for /health ("process" or "redis")."""


@contextmanager
def held(slots: ModelSlots) -> Iterator[None]:
    """Hold a slot for the block, waiting as long as it takes."""
    lease = slots.acquire()
    try:
        yield
    finally:
        if lease is not None:
            lease.release()


class OnceLease:
    """A held slot that gives itself back once, whichever thread releases it (twice: no-op)."""

    __slots__ = ("_give_back", "_lock", "_released")

    def __init__(self, give_back: Callable[[], None]) -> None:
        self._give_back = give_back
        self._lock = threading.Lock()
        self._released = False

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._give_back()


class LocalModelSlots:
    """The slots of one process."""

    def __init__(self, concurrency: int = 1) -> None:
        self.concurrency = max(concurrency, 1)
        self._free = threading.BoundedSemaphore(self.concurrency)

    def acquire(self, timeout: float | None = None) -> Lease | None:
        if not self._free.acquire(timeout=timeout):
            return None
        return OnceLease(self._free.release)

    def where(self) -> str:
        return "process"
