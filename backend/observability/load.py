"""How many requests this process is serving right now.

The admission middleware counts them (on the event loop, so no lock); background threads of
the same process read the count to do their work between requests rather than during them:
the in-process event worker's precompute held the GIL and SQLite's writer while requests
waited for both (25-32% of the storefront profile's samples, p99 in the hundreds of ms at half
the maximum rate).
"""

from __future__ import annotations


class RequestLoad:
    def __init__(self) -> None:
        self.in_flight = 0

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1

    def quiet(self) -> bool:
        """No request is inside the app (health checks and metrics are not counted)."""
        return self.in_flight <= 0
