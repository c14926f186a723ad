"""The filter fields are declared once; every shape that names them must agree."""

from typing import get_args

from backend.chat.llm_parser import LLM_SCHEMA
from backend.chat.state import VALUE_FILTERS, ChatFilters, FilterField, FilterUpdate, ValueLists


def test_every_state_field_is_removable_and_nothing_else() -> None:
    assert set(get_args(FilterField)) == {*ChatFilters.model_fields, "price"}


def test_each_value_filter_names_fields_of_the_state() -> None:
    for kind in VALUE_FILTERS:
        assert {kind.wanted, kind.excluded} <= set(ChatFilters.model_fields)


def test_the_llm_is_asked_for_the_same_value_lists_and_prices_the_update_takes() -> None:
    asked = set(LLM_SCHEMA["properties"])
    shared = {*ValueLists.model_fields, "min_price", "max_price"}
    assert shared <= asked
    assert shared <= set(FilterUpdate.model_fields)
    assert LLM_SCHEMA["properties"]["max_price"]["anyOf"][0]["minimum"] == 0
