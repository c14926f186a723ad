"""Readable text from a JSON answer that is still arriving, for streaming it to a shopper.

The model streams ``{"intro": "...", "reasons": [{"product_id": "P1", "reason": "..."}]}``;
``VisibleText`` turns each growing buffer into the intro and reasons as plain text so far, and
hands out only the new part. It is a preview: the final, checked text replaces it.
"""

from __future__ import annotations

import json
import re

_FIELD = re.compile(r'"(intro|reason)"\s*:\s*"((?:[^"\\]|\\.)*)(")?', re.S)
_PARTIAL_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{0,3})?$")


def _decode(fragment: str) -> str:
    fragment = _PARTIAL_ESCAPE.sub("", fragment)
    try:
        return str(json.loads(f'"{fragment}"'))
    except ValueError:
        return fragment


class VisibleText:
    def __init__(self) -> None:
        self._buffer = ""
        self._shown = ""

    def feed(self, delta: str) -> str:
        """Add a raw delta; return the text to show that was not shown before ('' if none)."""
        self._buffer += delta
        parts: list[str] = []
        for match in _FIELD.finditer(self._buffer):
            key, value = match.group(1), _decode(match.group(2))
            if key == "intro" and parts:
                continue  # an intro after the reasons would jumble the preview
            parts.append(value if key == "intro" else "\n- " + value)
        text = "".join(parts)
        if not text.startswith(self._shown) or len(text) == len(self._shown):
            return ""  # nothing new, or the answer is not in the expected order
        new, self._shown = text[len(self._shown) :], text
        return new
