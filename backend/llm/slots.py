"""How many calls the model server takes at once, shared by everything in this process
that writes explanations with it.

A local llama.cpp server answers one request at a time (``LLM_CONCURRENCY``). The explanation
queue's workers wait for a slot; a live explanation stream waits a moment and otherwise
answers with the template, so open streams can neither starve the queue nor pile requests
up on the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ModelSlots:
    def __init__(self, concurrency: int = 1) -> None:
        self.concurrency = max(concurrency, 1)
        self._free = threading.BoundedSemaphore(self.concurrency)

    def acquire(self, timeout: float | None = None) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds (None: as long as it takes)."""
        return self._free.acquire(timeout=timeout)

    def release(self) -> None:
        self._free.release()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()
