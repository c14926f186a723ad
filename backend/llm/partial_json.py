"""The finished parts of a JSON answer that is still arriving.

The model streams ``{"intro": "...", "intro_fact_ids": [...], "reasons": [{"product_id":
"P1", "reason": "...", "fact_ids": [...]}]}`` (the fact ids optional). ``finished_parts``
finds the intro once its fact ids (or the reasons) follow it, and every reason object that is
closed, so they can be checked against the evidence (and only then shown) before
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
_IDS = r'\[((?:\s*"[^"\\]*"\s*,?)*)\]'
_INTRO_DONE = re.compile(r'"intro_fact_ids"\s*:\s*' + _IDS + r'|"reasons"', re.S)
_REASON = re.compile(
    r'\{\s*"product_id"\s*:\s*'
    + _REF
    + r'\s*,\s*"reason"\s*:\s*'
    + _STRING
    + r'(?:\s*,\s*"fact_ids"\s*:\s*'
    + _IDS
    + r")?\s*\}",
    re.S,
)


@dataclass(frozen=True, slots=True)
class FinishedParts:
    intro: str | None  # None until it and its fact ids arrived
    # (product_id, reason, fact ids or None when the answer gives none), in the order written
    reasons: tuple[tuple[str, str, tuple[str, ...] | None], ...]
    intro_fact_ids: tuple[str, ...] = ()

    def as_json(self) -> str:
        """The parts as a (partial) answer of the full shape, for the evidence check."""
        reasons: list[dict[str, object]] = []
        for ref, reason, ids in self.reasons:
            entry: dict[str, object] = {"product_id": ref, "reason": reason}
            if ids is not None:
                entry["fact_ids"] = list(ids)
            reasons.append(entry)
        return json.dumps(
            {
                "intro": self.intro or "",
                "intro_fact_ids": list(self.intro_fact_ids),
                "reasons": reasons,
            }  # fmt: skip
        )


def _decode(fragment: str) -> str:
    try:
        return str(json.loads(f'"{fragment}"'))
    except ValueError:  # an invalid escape: keep the raw text (the check sees it as is)
        return fragment


def _ids(group: str | None) -> tuple[str, ...] | None:
    if group is None:
        return None
    return tuple(re.findall(r'"([^"\\]*)"', group))


def finished_parts(buffer: str) -> FinishedParts:
    intro = _INTRO.search(buffer)
    done = _INTRO_DONE.search(buffer, intro.end()) if intro else None
    reasons = tuple(
        (
            _decode(m.group(1)) if m.group(1) is not None else m.group(2),
            _decode(m.group(3)),
            _ids(m.group(4)),
        )
        for m in _REASON.finditer(buffer)
    )
    if intro is None or done is None:
        return FinishedParts(intro=None, reasons=reasons)
    return FinishedParts(
        intro=_decode(intro.group(1)), reasons=reasons, intro_fact_ids=_ids(done.group(1)) or ()
    )
