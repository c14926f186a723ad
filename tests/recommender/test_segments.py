"""Shopper segments: known answers on tiny synthetic shops, and cold start with them."""

from __future__ import annotations

import random
import uuid

import numpy as np
import pytest

from backend.recommender.segments import (
    FeatureSpec,
    UserActivity,
    activity_of,
    fit_segments,
    raw_profile,
)
from backend.recommender.snapshot import CatalogSnapshot, ProductRecord
from backend.recommender.strategies import BlendConfig, BlendStrategy, PopularityStrategy
from backend.recommender.strategies.base import RecommendRequest, SegmentHint
from tests.recommender.conftest import NOW, event, product

# Two obvious groups: budget kitchen shoppers and premium audio shoppers.
AUDIO = [product(f"Audio {i}", "Audio", ["audio"], price=f"{300 + 50 * i}.00") for i in range(4)]
KITCHEN = [product(f"Pan {i}", "Kitchen", ["kitchen"], price=f"{10 + i}.00") for i in range(4)]
CATALOG = AUDIO + KITCHEN


def shop() -> CatalogSnapshot:
    # Kitchen items are the globally popular ones: a segment answer must differ from them.
    return CatalogSnapshot.build(CATALOG, {p.id: 100 - i for i, p in enumerate(KITCHEN)})


def user(n: int) -> uuid.UUID:
    return uuid.UUID(int=n + 1)


def two_groups() -> list[UserActivity]:
    """12 audio shoppers and 16 kitchen shoppers, each with 2–4 items of their kind."""
    rng = random.Random(3)

    def shopper(n: int, kind: list[ProductRecord]) -> UserActivity:
        items = rng.sample(kind, rng.randint(2, 4))
        weights = {p.id: rng.choice([1.0, 1.5, 4.0, 6.0]) for p in items}
        return UserActivity(user(n), weights, interactions=rng.randint(2, 12))

    return [shopper(i, AUDIO) for i in range(12)] + [shopper(100 + i, KITCHEN) for i in range(16)]


def test_two_obvious_groups_are_found_and_labelled():
    model = fit_segments(two_groups(), shop())
    assert model is not None
    assert len(model.segments) == 2  # k chosen by silhouette among 2–8
    assert model.silhouette is not None and model.silhouette > 0.5
    kitchen, audio = model.segments  # numbered by size: 8 kitchen shoppers, then 6 audio
    assert (kitchen.size, audio.size) == (16, 12)
    assert kitchen.label == "Kitchen · budget"
    assert audio.label == "Audio · premium"
    assert audio.top_categories == ("Audio",)
    assert audio.avg_price > 300 > 20 > kitchen.avg_price
    assert {model.assignments[user(i)] for i in range(12)} == {audio.segment}
    assert {model.assignments[user(100 + i)] for i in range(16)} == {kitchen.segment}
    # The segment's most chosen items are its own category's.
    assert {pid for pid, _ in audio.popular} <= {p.id for p in AUDIO}


def test_labels_and_numbers_are_stable_under_input_order():
    activities = two_groups()
    first = fit_segments(activities, shop())
    random.Random(7).shuffle(activities)
    again = fit_segments(activities, shop())
    assert first is not None and again is not None
    assert [(s.segment, s.label, s.size) for s in first.segments] == [
        (s.segment, s.label, s.size) for s in again.segments
    ]
    assert first.assignments == again.assignments


def test_a_fixed_segment_count_is_honoured():
    model = fit_segments(two_groups(), shop(), k=3)
    assert model is not None and len(model.segments) == 3
    labels = [s.label for s in model.segments]
    assert len(set(labels)) == 3  # equal labels are told apart
    assert sum(label.startswith("Kitchen · budget") for label in labels) == 2


def test_no_signal_means_no_model():
    silent = [UserActivity(user(1), {}, interactions=2, searches=("hello",))]
    assert fit_segments(silent, shop()) is None


def test_feature_spec_round_trips_through_json():
    model = fit_segments(two_groups(), shop())
    assert model is not None
    assert FeatureSpec.from_json(model.spec.to_json()) == model.spec


def test_a_new_user_is_placed_from_whatever_signal_they_have():
    model = fit_segments(two_groups(), shop())
    assert model is not None
    one_view = activity_of(user(99), [event(AUDIO[3])])
    assert model.assign(one_view, shop()).label == "Audio · premium"
    searched = UserActivity(user(98), {}, interactions=1, searches=("a new kitchen pan",))
    assert raw_profile(searched, shop()).has_signal
    assert model.assign(searched, shop()).label == "Kitchen · budget"
    nothing = UserActivity(user(97), {}, interactions=0)
    assert model.assign(nothing, shop()) is None


@pytest.fixture
def audio_hint() -> SegmentHint:
    model = fit_segments(two_groups(), shop())
    assert model is not None
    audio = next(s for s in model.segments if s.label.startswith("Audio"))
    return SegmentHint(audio.segment, audio.label, audio.size, dict(audio.popular))


def test_cold_start_user_gets_the_segment_items_with_evidence(audio_hint):
    hybrid = BlendStrategy("hybrid", BlendConfig(weights={"cf": 1.0}))
    history = [event(AUDIO[0])]
    recs = hybrid.recommend(shop(), RecommendRequest(history, top_n=3, now=NOW, segment=audio_hint))
    assert [CATALOG[r.index].category for r in recs] == ["Audio"] * 3
    assert AUDIO[0].id not in {CATALOG[r.index].id for r in recs}  # already seen
    top = recs[0].evidence
    assert top.segment is not None and top.segment.label == "Audio · premium"
    assert top.segment.shoppers == audio_hint.popular[CATALOG[recs[0].index].id]
    assert [s.name for s in top.sources] == ["segment"]
    assert "shoppers like you (Audio · premium)" in top.sources[0].detail
    assert recs[0].score == pytest.approx(1.0)
    assert np.all(np.diff([r.score for r in recs]) <= 0)
    # The same request ranks the same way for the evaluation path.
    assert hybrid.rank(
        shop(), RecommendRequest(history, top_n=3, now=NOW, segment=audio_hint)
    ).tolist() == [r.index for r in recs]


def test_segment_items_run_out_into_popularity(audio_hint):
    hybrid = BlendStrategy("hybrid", BlendConfig(weights={"cf": 1.0}))
    recs = hybrid.recommend(shop(), RecommendRequest([], top_n=6, now=NOW, segment=audio_hint))
    assert len(recs) == 6
    segment_items = [r for r in recs if r.evidence.segment is not None]
    assert len(segment_items) == len(audio_hint.popular) == 4  # the 4 audio items
    assert [r.evidence.sources[0].name for r in recs[4:]] == ["popularity", "popularity"]
    assert all(r.score == 0 for r in recs[4:])


def test_no_signal_user_gets_global_popularity():
    hybrid = BlendStrategy("hybrid", BlendConfig(weights={"cf": 1.0}))
    recs = hybrid.recommend(shop(), RecommendRequest([], top_n=3, now=NOW))
    assert [CATALOG[r.index] for r in recs] == KITCHEN[:3]
    assert all(r.evidence.segment is None for r in recs)
    assert [r.index for r in recs] == [
        r.index for r in PopularityStrategy().recommend(shop(), RecommendRequest([], 3, NOW))
    ]
