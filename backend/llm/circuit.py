"""The circuit breaker: stop calling an LLM that keeps failing, for a cool-down."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from backend.llm.client import CircuitState, CircuitStatus

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class CircuitBreaker:
    """closed → (N consecutive failures) → open → (cool-down) → half-open → one trial call.

    The trial's success closes the circuit; its failure opens it for another cool-down.
    """

    def __init__(self, failure_threshold: int, cooldown_seconds: float, clock: Clock) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    def _state(self) -> CircuitState:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown_seconds:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go out now (claims the single half-open trial slot)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                log.info("LLM circuit closed after a successful trial call")
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            reopen = self._trial_running
            self._trial_running = False
            if reopen or (self._opened_at is None and self._failures >= self.failure_threshold):
                self._opened_at = self._clock()
                log.warning(
                    "LLM circuit open for %.0f s after %d failures",
                    self.cooldown_seconds,
                    self._failures,
                )

    def release(self) -> None:
        """A call that says nothing about health (e.g. a 400) gives the trial slot back."""
        with self._lock:
            self._trial_running = False

    def status(self) -> CircuitStatus:
        with self._lock:
            state = self._state()
            retry_in = 0.0
            if state == "open" and self._opened_at is not None:
                retry_in = self.cooldown_seconds - (self._clock() - self._opened_at)
            return CircuitStatus(state, self._failures, round(max(retry_in, 0.0), 3))
