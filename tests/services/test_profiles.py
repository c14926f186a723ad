"""Incremental profiles: each event folds into affinities, recent items and counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from backend.db.models import Interaction, UserPreferences
from backend.services.profiles import RECENT_ITEMS, apply_event

USER = uuid.uuid4()
LAMP, KETTLE = uuid.uuid4(), uuid.uuid4()
FACETS = {LAMP: ("Home", ["lighting", "desk"]), KETTLE: ("Kitchen", ["electric"])}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(action: str, product: uuid.UUID | None = None, query: str | None = None, s: int = 0):
    return Interaction(
        user_id=USER, product_id=product, action=action, query=query,
        created_at=T0 + timedelta(seconds=s),
    )  # fmt: skip


def test_weights_add_up_per_category_and_tag():
    prefs = UserPreferences(user_id=USER)
    apply_event(prefs, event("view", LAMP), FACETS)
    apply_event(prefs, event("purchase", LAMP, s=1), FACETS)
    apply_event(prefs, event("add_to_cart", KETTLE, s=2), FACETS)
    assert prefs.category_affinity == {"Home": 7.0, "Kitchen": 4.0}
    assert prefs.tag_affinity == {"lighting": 7.0, "desk": 7.0, "electric": 4.0}
    assert prefs.action_counts == {"view": 1, "purchase": 1, "add_to_cart": 1}
    assert prefs.event_count == 3
    assert prefs.recent_items == [str(KETTLE), str(LAMP)]  # newest first, no repeats
    assert prefs.last_event_at == T0 + timedelta(seconds=2)


def test_remove_from_cart_counts_but_adds_no_affinity():
    prefs = UserPreferences(user_id=USER)
    apply_event(prefs, event("remove_from_cart", LAMP), FACETS)
    assert prefs.category_affinity == {} and prefs.action_counts == {"remove_from_cart": 1}
    assert prefs.event_count == 1


def test_searches_are_remembered_and_known_tags_in_them_count():
    prefs = UserPreferences(user_id=USER)
    apply_event(
        prefs, event("search", query="LED desk lighting"), FACETS,
        known_tags=frozenset({"desk", "lighting"}),
    )  # fmt: skip
    apply_event(prefs, event("search", query="kettle", s=1), FACETS)
    assert prefs.recent_searches == ["kettle", "LED desk lighting"]
    assert prefs.tag_affinity == {"desk": 1.0, "lighting": 1.0}


def test_recent_items_are_bounded():
    prefs = UserPreferences(user_id=USER)
    products = [uuid.uuid4() for _ in range(RECENT_ITEMS + 5)]
    facets = {p: ("C", []) for p in products}
    for i, p in enumerate(products):
        apply_event(prefs, event("view", p, s=i), facets)
    assert len(prefs.recent_items) == RECENT_ITEMS
    assert prefs.recent_items[0] == str(products[-1])


def test_json_fields_are_replaced_not_mutated():
    """The ORM only notices a JSON change when the attribute gets a new object."""
    prefs = UserPreferences(user_id=USER)
    before = prefs.category_affinity
    apply_event(prefs, event("view", LAMP), FACETS)
    assert prefs.category_affinity is not before and before == {}
