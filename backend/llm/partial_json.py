"""The finished parts of a JSON answer that is still arriving.

The model streams ``{"intro": "...", "reasons": [{"product_id": "P1", "reason": "..."}]}``.
``finished_parts`` finds the intro once its closing quote has arrived and every reason object
that is closed, so they can be checked against the evidence (and only then shown) before
the whole answer is there. Anything not in that shape is simply not found: the final check
of the whole answer decides then.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_STRING = r'"((?:[^"\\]|\\.)*)"'
_INTRO = re.compile(r'"intro"\s*:\s*' + _STRING, re.S)
_REF = r"(?:" + _STRING + r"|(\d+))"  # "P1", or a bare number
_REASON = re.compile(
    r'\{\s*"product_id"\s*:\s*' + _REF + r'\s*,\s*"reason"\s*:\s*' + _STRING + r"\s*\}", re.S
)


@dataclass(frozen=True, slots=True)
class FinishedParts:
    intro: str | None  # None until its closing quote arrived
    reasons: tuple[tuple[str, str], ...]  # (product_id, reason), in the order written

    def as_json(self) -> str:
        """The parts as a (partial) answer of the full shape, for the evidence check."""
        reasons = [{"product_id": ref, "reason": reason} for ref, reason in self.reasons]
        return json.dumps({"intro": self.intro or "", "reasons": reasons})


def _decode(fragment: str) -> str:
    try:
        return str(json.loads(f'"{fragment}"'))
    except ValueError:  # an invalid escape: keep the raw text (the check sees it as is)
        return fragment


def finished_parts(buffer: str) -> FinishedParts:
    intro = _INTRO.search(buffer)
    reasons = tuple(
        (_decode(m.group(1)) if m.group(1) is not None else m.group(2), _decode(m.group(3)))
        for m in _REASON.finditer(buffer)
    )
    return FinishedParts(intro=_decode(intro.group(1)) if intro else None, reasons=reasons)
