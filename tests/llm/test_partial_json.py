"""The finished parts of a streaming JSON answer, whatever the chunking and the escapes."""

from __future__ import annotations

import json

from backend.llm.partial_json import finished_parts

ANSWER = json.dumps(
    {
        "intro": 'Hi Zoë, "great" picks',
        "reasons": [
            {"product_id": "P1", "reason": "Back\\slash and ✓ ok."},
            {"product_id": 2, "reason": "Second."},
        ],
    }
)


def test_parts_appear_only_once_finished():
    seen = []
    for end in range(len(ANSWER) + 1):
        parts = finished_parts(ANSWER[:end])
        seen.append((parts.intro, parts.reasons))
    # In order: nothing, the intro, then one reason after the other; never a half-written one.
    distinct = list(dict.fromkeys((i, r) for i, r in seen))
    assert distinct == [
        (None, ()),
        ('Hi Zoë, "great" picks', ()),
        ('Hi Zoë, "great" picks', (("P1", "Back\\slash and ✓ ok.", None),)),
        ('Hi Zoë, "great" picks', (("P1", "Back\\slash and ✓ ok.", None), ("2", "Second.", None))),
    ]


def test_fact_ids_come_with_their_reason_and_the_intro_waits_for_its_own():
    text = json.dumps(
        {
            "intro": "Hi",
            "intro_fact_ids": ["U1"],
            "reasons": [{"product_id": "P1", "reason": "R.", "fact_ids": ["F1", "F2"]}],
        }
    )
    assert finished_parts(text[: text.index("intro_fact_ids")]).intro is None
    parts = finished_parts(text)
    assert parts.intro == "Hi" and parts.intro_fact_ids == ("U1",)
    assert parts.reasons == (("P1", "R.", ("F1", "F2")),)
    assert json.loads(parts.as_json())["reasons"][0]["fact_ids"] == ["F1", "F2"]


def test_the_parts_make_an_answer_of_the_full_shape():
    parts = finished_parts(ANSWER[: ANSWER.index("Second")])
    assert json.loads(parts.as_json()) == {
        "intro": 'Hi Zoë, "great" picks',
        "intro_fact_ids": [],
        "reasons": [{"product_id": "P1", "reason": "Back\\slash and ✓ ok."}],
    }


def test_text_that_is_not_the_json_shape_has_no_parts():
    assert finished_parts("Sure! Here are some picks.") == finished_parts("")
    assert finished_parts('{"intro": "Hi, still writ').intro is None
