"""``item.name`` in a template: the sandbox's answer, whatever the shortcut it takes for plain
dicts (a key, a dict method of that name, an unsafe attribute, a missing key)."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from backend.config import PROJECT_ROOT
from backend.llm.prompts import PromptError, PromptLibrary


def render(source: str, **context: object) -> str:
    library = PromptLibrary(PROJECT_ROOT / "prompts").with_draft("t.j2", source)
    return library.render("t.j2", **context)


def test_a_key_of_a_plain_dict_or_of_a_subclass():
    item = {"name": "Desk Lamp", "evidence": {"popularity_rank": 3}}
    assert render("{{ i.name }} #{{ i.evidence.popularity_rank }}", i=item) == "Desk Lamp #3"
    assert render("{{ i.name }}", i=OrderedDict(name="Kettle")) == "Kettle"


def test_a_dict_method_wins_over_a_key_of_its_name_as_before():
    assert render("{{ d.items is callable }} {{ d['items'] }}", d={"items": [1]}) == "True [1]"


def test_a_missing_key_is_an_error_and_unsafe_attributes_stay_refused():
    with pytest.raises(PromptError, match="nope"):
        render("{{ d.nope }}", d={"name": "x"})
    with pytest.raises(PromptError, match="unsafe"):
        render("{{ d.__class__.__subclasses__() }}", d={"name": "x"})
    assert render("{{ d._private }}", d={"_private": "kept"}) == "kept"
