"""Experiment definitions are validated before anything is stored."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.experiments.model import DEFAULT_PROMPT, ExperimentCreate, VariantSpec


def body(**overrides):
    data = {
        "name": "blend test",
        "variants": [
            {"name": "control", "share": 0.5},
            {"name": "content-heavy", "share": 0.5, "blend": {"content": 0.8, "cf": 0.2}},
        ],
    }
    data.update(overrides)
    return data


def test_a_valid_definition():
    spec = ExperimentCreate.model_validate(body())
    assert spec.attribution_window_hours == 24
    assert spec.variants[1].blend.weights() == {
        "content": 0.8, "cf": 0.2, "rules": 0.0, "popularity": 0.0
    }  # fmt: skip


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([{"name": "a", "share": 0.5}, {"name": "b", "share": 0.4}], "sum to 1"),
        ([{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}], "unique"),
        ([{"name": "a", "share": 1.0}], "at least 2"),
        ([{"name": "a", "share": 0}, {"name": "b", "share": 1}], "greater than 0"),
        ([{"name": "a", "share": 1.5}, {"name": "b", "share": -0.5}], "less than or equal"),
        ([{"name": "a", "share": 0.5, "strategy": "rules", "blend": {"cf": 1}},
          {"name": "b", "share": 0.5}], "hybrid"),
        ([{"name": "a", "share": 0.5, "blend": {"cf": 0}}, {"name": "b", "share": 0.5}],
         "not all be 0"),
        ([{"name": "a", "share": 0.5, "prompt_name": "x.j2"}, {"name": "b", "share": 0.5}],
         "needs a prompt_version"),
        ([{"name": "a", "share": 0.5, "colour": "red"}, {"name": "b", "share": 0.5}],
         "Extra inputs"),
    ],
)  # fmt: skip
def test_bad_definitions_are_refused(variants, message):
    with pytest.raises(ValidationError, match=message):
        ExperimentCreate.model_validate(body(variants=variants))


def test_pinned_prompt_defaults_to_the_llm_instructions():
    assert VariantSpec(name="a", share=0.5, prompt_version=3).pinned_prompt == (DEFAULT_PROMPT, 3)
    spec = VariantSpec(name="a", share=0.5, prompt_version=2, prompt_name="explanation.j2")
    assert spec.pinned_prompt == ("explanation.j2", 2)
    assert VariantSpec(name="a", share=0.5).pinned_prompt is None
