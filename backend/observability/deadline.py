"""The request-wide time budget, carried in a contextvar so any layer can ask what is left.

The middleware sets the deadline once per request (one contextvar write, no allocation beyond
the float); the LLM client caps its own deadline by what is left, and a caller that finds the
budget spent degrades (template explanation) or answers 503 through ``DeadlineExceeded``.
Background work (worker, snapshot refresh) has no deadline: ``remaining()`` is ``None`` there.
Times are ``time.perf_counter()`` values, the clock the middleware already reads.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token

deadline_var: ContextVar[float | None] = ContextVar("request_deadline", default=None)


class DeadlineExceeded(Exception):
    """The request's time budget ran out before an answer was possible."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} did not finish within the request deadline")


def start(seconds: float) -> Token[float | None]:
    """Give the current context ``seconds`` from now (tests and non-HTTP callers)."""
    return deadline_var.set(time.perf_counter() + seconds)


def remaining() -> float | None:
    """Seconds left in this request's budget (may be negative), or ``None`` without one."""
    deadline = deadline_var.get()
    return None if deadline is None else deadline - time.perf_counter()


def bounded(seconds: float) -> float:
    """``seconds`` capped by what is left of the request's budget (never below zero)."""
    left = remaining()
    return seconds if left is None else max(0.0, min(seconds, left))


def check(what: str) -> None:
    """Raise ``DeadlineExceeded`` when the budget is already spent."""
    left = remaining()
    if left is not None and left <= 0:
        raise DeadlineExceeded(what)
