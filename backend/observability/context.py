"""The request id of the request being served, readable from any log line."""

from __future__ import annotations

import itertools
import os
import re
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_VALID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class _Ids:
    """32 hex characters: a random prefix per process and a counter. Unique like a uuid4 (the
    prefix has 80 random bits) without a ``getrandom`` call per request: that syscall lets go
    of the GIL, and taking it back behind a busy thread cost the event loop up to 5 ms
    (``uuid4`` was 1.5% of the storefront profile's samples)."""

    def __init__(self) -> None:
        self._renew()
        os.register_at_fork(after_in_child=self._renew)  # a forked worker gets its own prefix

    def _renew(self) -> None:
        self._prefix = os.urandom(10).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


_ids = _Ids()


def accept_request_id(header: str | None) -> str:
    """Keep a caller's id when it is safe to log and echo; otherwise make one."""
    if header and _VALID.match(header):
        return header
    return _ids.next()
