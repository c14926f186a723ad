from __future__ import annotations

from backend.recommender.profile import frequency_profile
from backend.recommender.strategies import RecommendRequest, RulesStrategy

from .conftest import CATALOG, DESK_LAMP, EARBUDS, NOW, event


def ask(snapshot, interactions, top_n=10):
    request = RecommendRequest(interactions=interactions, top_n=top_n, now=NOW)
    return RulesStrategy().recommend(snapshot, request)


def test_profile_takes_top_categories_and_tags_by_frequency(snapshot, audio_history):
    profile = frequency_profile(audio_history, snapshot)
    assert [c for c, _ in profile.top_categories(3)] == ["Accessories", "Electronics"]
    assert {t for t, _ in profile.top_tags(5)} == {"audio", "wireless", "bluetooth", "portable"}


def test_worked_example_earbuds_16_desk_lamp_0(snapshot, audio_history):
    recs = ask(snapshot, audio_history)
    by_name = {snapshot.products[r.index].name: r for r in recs}
    earbuds = by_name["Wireless Earbuds"]
    assert earbuds.score == 16
    assert [m.name for m in earbuds.evidence.matched_categories] == ["Electronics"]
    assert {m.name for m in earbuds.evidence.matched_tags} == {"audio", "wireless"}
    assert earbuds.evidence.matched_categories[0].weight == 10
    assert all(m.weight == 3 for m in earbuds.evidence.matched_tags)
    # The lamp matches nothing: it only appears as a popularity filler with score 0 points.
    assert recs[0].index == snapshot.index[EARBUDS.id]
    lamp = by_name[DESK_LAMP.name]
    assert lamp.evidence.sources[0].name == "popularity"
    assert lamp.evidence.matched_categories == [] and lamp.evidence.matched_tags == []


def test_never_recommends_what_the_user_interacted_with(snapshot, audio_history):
    seen = {e.product_id for e in audio_history}
    recs = ask(snapshot, audio_history)
    assert not seen & {snapshot.products[r.index].id for r in recs}


def test_cold_start_returns_most_popular(snapshot):
    recs = ask(snapshot, [], top_n=3)
    assert [snapshot.products[r.index].name for r in recs] == [
        "Desk Lamp",
        "Cast Iron Skillet",
        "Electric Kettle",
    ]
    assert all(r.evidence.sources[0].name == "popularity" for r in recs)
    assert [r.evidence.popularity_rank for r in recs] == [1, 2, 3]


def test_user_who_interacted_with_everything_gets_nothing(snapshot):
    everything = [event(p) for p in CATALOG]
    assert ask(snapshot, everything) == []


def test_evidence_names_the_past_items_that_led_there(snapshot, audio_history):
    recs = ask(snapshot, audio_history)
    earbuds = next(r for r in recs if r.index == snapshot.index[EARBUDS.id])
    names = [p.product_name for p in earbuds.evidence.because_of]
    assert "Studio Headphones" in names
