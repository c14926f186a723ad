"""Streaming preview: the intro and reasons of a JSON answer, readable as they arrive."""

from __future__ import annotations

import json

from backend.llm.partial_json import VisibleText


def feed_all(text: str, step: int) -> str:
    visible = VisibleText()
    return "".join(visible.feed(text[i : i + step]) for i in range(0, len(text), step))


def test_text_arrives_in_order_whatever_the_chunking_and_escapes():
    answer = json.dumps(
        {
            "intro": 'Hi Zoë, "great" picks',
            "reasons": [
                {"product_id": "P1", "reason": "Back\\slash and ✓ ok."},
                {"product_id": "P2", "reason": "Second."},
            ],
        }
    )
    expected = 'Hi Zoë, "great" picks\n- Back\\slash and ✓ ok.\n- Second.'
    for step in (1, 2, 5, 17, len(answer)):
        assert feed_all(answer, step) == expected


def test_non_json_or_out_of_order_answers_show_nothing_provisional():
    assert feed_all("Sure! Here are some picks.", 3) == ""
    odd = '{"reasons": [{"product_id": "P1", "reason": "A"}], "intro": "Hi"}'
    assert feed_all(odd, 4) == "\n- A"  # the intro after the reasons is not shown early
