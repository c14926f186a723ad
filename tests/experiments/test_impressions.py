"""The impression log: queued on the request path, written in batches, drops counted."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from backend.config import Settings
from backend.db.models import RecAnalytics, User
from backend.jobs.impressions import evidence_check_outcome


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The shared test settings, with a test's own overrides (``indirect`` parametrize)."""
    return settings.model_copy(update=getattr(request, "param", {}))


def rows(db):
    with Session(db) as session:
        return session.exec(
            select(RecAnalytics).order_by(RecAnalytics.id)  # type: ignore[arg-type]
        ).all()


def test_responses_and_cached_responses_become_rows(components, shop):
    alice = shop.users["alice"].id
    first = components.recommender.recommend(alice, top_n=3, strategy="rules")
    again = components.recommender.recommend(alice, top_n=3, strategy="rules")
    assert again.cached and not first.cached
    assert rows(components.db) == []  # nothing written on the request path
    assert components.impressions.pending == 2
    assert components.impressions.flush() == 6
    written = rows(components.db)
    assert [r.position for r in written] == [0, 1, 2, 0, 1, 2]
    assert [r.product_id for r in written[:3]] == [p.id for p in first.recommended_products]
    assert [r.cached for r in written] == [False] * 3 + [True] * 3
    assert len({r.response_id for r in written}) == 2
    r = written[0]
    assert (r.user_id, r.strategy, r.experiment_id, r.variant) == (alice, "rules", None, None)
    assert (r.explanation_source, r.evidence_check) == ("template", None)
    assert (r.attributable_until - r.created_at).total_seconds() == 24 * 3600
    metrics = components.metrics.render().decode()
    assert 'shopwise_impressions_total{strategy="rules",variant="none"} 6.0' in metrics


@pytest.mark.parametrize("settings", [{"impression_queue_size": 1}], indirect=True)
def test_a_full_queue_drops_and_counts(components, shop):
    logger = components.impressions
    alice, bob = shop.users["alice"].id, shop.users["bob"].id
    components.recommender.recommend(alice, top_n=2, strategy="rules")
    components.recommender.recommend(bob, top_n=2, strategy="rules")  # queue full: dropped
    assert logger.dropped == 2
    components.recommender.recommend(bob, top_n=2, strategy="rules")  # cached, dropped too
    assert logger.dropped == 4  # counted per product, also for a stored answer's JSON
    assert logger.flush() == 2
    assert 'shopwise_impressions_dropped_total{reason="queue_full"} 4.0' in (
        components.metrics.render().decode()
    )


@pytest.mark.parametrize("settings", [{"impression_flush_seconds": 60}], indirect=True)
def test_stop_writes_what_is_queued(components, shop):
    logger = components.impressions
    logger.start()
    components.recommender.recommend(shop.users["alice"].id, top_n=2, strategy="rules")
    logger.stop()
    assert len(rows(components.db)) == 2 and logger.written == 2


def test_a_user_erased_before_the_flush_loses_only_their_rows(components, shop):
    alice, bob = shop.users["alice"].id, shop.users["bob"].id
    components.recommender.recommend(alice, top_n=2, strategy="rules")
    components.recommender.recommend(bob, top_n=2, strategy="rules")
    components.privacy.erase(bob)
    assert components.impressions.flush() == 2
    assert {r.user_id for r in rows(components.db)} == {alice}
    assert 'reason="user_deleted"} 2.0' in components.metrics.render().decode()


def test_rows_go_with_the_user(components, shop):
    alice = shop.users["alice"].id
    components.recommender.recommend(alice, top_n=2, strategy="rules")
    components.impressions.flush()
    components.privacy.erase(alice)
    with Session(components.db) as session:
        assert session.exec(sa.select(sa.func.count()).select_from(RecAnalytics)).one()[0] == 0
        assert session.get(User, alice) is None


def test_a_failing_database_drops_the_batch_and_keeps_serving(components, shop, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(**_):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr("backend.db.crud.analytics.insert_impressions", broken)
    components.recommender.recommend(shop.users["alice"].id, top_n=2, strategy="rules")
    assert components.impressions.flush() == 0
    assert components.impressions.dropped == 2
    assert 'reason="write_failed"} 2.0' in components.metrics.render().decode()


@pytest.mark.parametrize(
    ("source", "reason", "expected"),
    [
        ("llm", None, True),
        ("template", "check_failed:unsupported_claim", False),
        ("template", "bad_json", False),
        ("template", "no_api_key", None),
        ("template", "timeout", None),
    ],
)
def test_evidence_check_outcome(source, reason, expected):
    assert evidence_check_outcome(source, reason) is expected


def test_the_export_includes_what_was_shown(components, shop):
    alice = shop.users["alice"].id
    shown = components.recommender.recommend(alice, top_n=2, strategy="rules")
    components.impressions.flush()
    export = components.privacy.export(alice)
    assert [i["product_id"] for i in export.impressions] == [
        str(p.id) for p in shown.recommended_products
    ]
