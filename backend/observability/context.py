"""The request id of the request being served, readable from any log line."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_VALID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def accept_request_id(header: str | None) -> str:
    """Keep a caller's id when it is safe to log and echo; otherwise make one."""
    if header and _VALID.match(header):
        return header
    return uuid.uuid4().hex
