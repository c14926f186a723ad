"""One training at a time across every process on a models directory.

Each API process and the event worker would otherwise train the same models at the same
moment (a cold shop: every ``serve`` process trained, beside its requests). An exclusive
``flock`` on a file in the models directory is held for a whole training; the kernel drops it
when its holder closes the file or dies, so a crashed trainer never leaves it stuck.

A lock belongs to the open file, not to a thread: a process can take it in one thread and
hand it to another (the cold start trains its quick models inline and finishes in the
background, one training under one lock). Every ``acquire`` opens the file anew, so two
holders in one process exclude each other as two processes do.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

LOCK_FILE = "training.lock"
POLL_SECONDS = 0.1


class HeldLock:
    """The lock, held until ``release`` (or the end of a ``with`` block)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class TrainingLock:
    def __init__(self, models_dir: Path) -> None:
        self.path = models_dir / LOCK_FILE

    def try_acquire(self) -> HeldLock | None:
        """The lock if it is free now, else None (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message of a process that waits (advisory only).
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return HeldLock(fd)

    def acquire(
        self,
        timeout: float | None,
        *,
        give_up: Callable[[], bool] = lambda: False,
        on_wait: Callable[[str], None] | None = None,
    ) -> HeldLock | None:
        """Wait up to ``timeout`` seconds (None: for as long as it takes) for the lock; None
        when it stayed taken or ``give_up()`` said so (polled while waiting). ``on_wait`` is
        told once, with who holds it, when the lock is taken."""
        deadline = None if timeout is None else time.monotonic() + timeout
        told = False
        while True:
            held = self.try_acquire()
            if held is not None:
                return held
            if not told and on_wait is not None:
                on_wait(f"another training holds {self.path} ({self.holder()}); waiting for it")
                told = True
            if give_up() or (deadline is not None and time.monotonic() >= deadline):
                return None
            time.sleep(POLL_SECONDS)

    def holder(self) -> str:
        try:
            pid = self.path.read_text(encoding="ascii").strip()
        except OSError:
            pid = ""
        return f"pid {pid}" if pid else "holder unknown"
