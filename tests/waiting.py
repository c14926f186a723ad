"""Waiting in tests for something that happens on another thread or process, and a free port
to start a server on. Polls without asserting on time: a deadline only turns a hang into a
failure that says what never happened."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None],
    what: str = "the condition",
    seconds: float = 30.0,
    *,
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something true, and return that (so a condition
    that answers None until it has a value hands the value over, typed as such)."""
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(interval)
    return result


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
