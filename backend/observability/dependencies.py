"""Failures of external systems: counted per component, logged once per outage.

Any layer that sees a dependency fail (the database engine, the vector store, the LLM client)
reports it here. An outage starts with the first failure and lasts while failures keep coming
within ``window_seconds``; it is logged when it starts and when it is over, never per request.
``/health`` reads ``current()`` so a component that failed a moment ago shows degraded even if
its probe answers now (a dropped connection, a query cancelled by the statement timeout).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

log = logging.getLogger(__name__)

WINDOW_SECONDS = 30.0


class _Counter(Protocol):
    def labels(self, *values: str) -> _Child: ...


class _Child(Protocol):
    def inc(self, amount: float = 1) -> None: ...


@dataclass(frozen=True, slots=True)
class Outage:
    failures: int
    started: float
    last: float
    detail: str


class DependencyMonitor:
    def __init__(
        self,
        counter: _Counter | None = None,
        *,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counter = counter
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._outages: dict[str, Outage] = {}

    def failure(self, component: str, error: BaseException | str) -> None:
        detail = error if isinstance(error, str) else describe(error)
        now = self._clock()
        with self._lock:
            ended = self._expire(component, now)
            outage = self._outages.get(component)
            started = outage is None
            self._outages[component] = (
                Outage(1, now, now, detail)
                if outage is None
                else replace(outage, failures=outage.failures + 1, last=now, detail=detail)
            )
        if self.counter is not None:
            self.counter.labels(component).inc()
        if ended is not None:
            _log_recovered(component, ended)
        if started:
            log.warning(
                "%s is failing (%s); degrading answers until it recovers", component, detail
            )

    def current(self, component: str) -> Outage | None:
        """The ongoing outage of ``component``, or ``None`` (logs the end of one, once)."""
        with self._lock:
            ended = self._expire(component, self._clock())
            outage = self._outages.get(component)
        if ended is not None:
            _log_recovered(component, ended)
        return outage

    def _expire(self, component: str, now: float) -> Outage | None:
        outage = self._outages.get(component)
        if outage is not None and now - outage.last > self.window_seconds:
            del self._outages[component]
            return outage
        return None


def describe(error: BaseException) -> str:
    """A one-line, bounded description of an error (the first line of its message)."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    first = text[0][:200] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _log_recovered(component: str, outage: Outage) -> None:
    log.info(
        "%s recovered after %d failure(s) over %.1f s",
        component,
        outage.failures,
        outage.last - outage.started,
    )
