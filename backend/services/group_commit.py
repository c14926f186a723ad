"""Group commit: requests that arrive while a write is under way are written together next.

Each caller hands in its job and waits. The first caller with nobody writing becomes the
leader: it takes every job waiting (its own first, up to ``max_size``), writes them with one
call, hands each its outcome and passes the lead to the oldest job still waiting, whose caller
then writes the next group. One thread writes at a time, so a burst of N requests costs a few
transactions instead of N, and nobody waits for a timer: an idle writer starts at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")

# The write: one outcome per job, in order; an exception for a job fails that job only.
WriteFn = Callable[[Sequence[J]], Sequence["R | BaseException"]]
# What follows a write (telling caches and streams): runs after the lead has passed on, so the
# next group's write does not wait for it, and before the group's callers are answered.
AfterFn = Callable[[Sequence[J], Sequence["R | BaseException"]], None]


@dataclass(eq=False)
class _Slot(Generic[J, R]):
    job: J
    size: int
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    outcome: R | BaseException | None = None


class GroupCommit(Generic[J, R]):
    def __init__(
        self,
        write: WriteFn[J, R],
        *,
        max_size: int,
        size: Callable[[J], int] = lambda _: 1,
        after: AfterFn[J, R] | None = None,
    ) -> None:
        self._write = write
        self._after = after
        self._max_size = max_size
        self._size = size
        self._lock = threading.Lock()
        self._waiting: list[_Slot[J, R]] = []
        self._busy = False  # a leader is writing; invariant: jobs wait only while busy

    @property
    def waiting(self) -> int:
        """Jobs queued behind the group being written."""
        with self._lock:
            return len(self._waiting)

    def submit(self, job: J) -> R:
        """Write ``job`` (with whatever else is waiting) and return its outcome, or raise
        the exception its write raised."""
        slot: _Slot[J, R] = _Slot(job, self._size(job))
        with self._lock:
            self._waiting.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.ready.wait()
            lead = slot.lead
        if lead:
            self._lead()
        outcome = slot.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            group: list[_Slot[J, R]] = []
            total = 0
            while self._waiting and (not group or total + self._waiting[0].size <= self._max_size):
                total += self._waiting[0].size
                group.append(self._waiting.pop(0))
        try:
            outcomes: Sequence[R | BaseException] = self._write([s.job for s in group])
            if len(outcomes) != len(group):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(group)} jobs")
        except BaseException as exc:  # every job of the group learns of it
            outcomes = [exc] * len(group)
        finally:
            with self._lock:
                if self._waiting:
                    following = self._waiting[0]
                    following.lead = True
                    following.ready.set()
                else:
                    self._busy = False
        if self._after is not None:
            try:
                self._after([s.job for s in group], outcomes)
            except BaseException as exc:
                outcomes = [exc] * len(group)
        for slot, outcome in zip(group, outcomes, strict=True):
            slot.outcome = outcome
            slot.ready.set()
