"""Attribution SQL, known answers on both databases: latest impression, window, stop time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from backend.db.crud import analytics as repo
from backend.db.engine import session_scope
from backend.db.models import Experiment, Interaction
from tests.factories import make_product, make_user

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def impression(user, product, variant, at, experiment, *, response=None, source="template",
               check=None):  # fmt: skip
    return repo.Impression(**{
        "response_id": response or uuid.uuid4(),
        "user_id": user.id,
        "product_id": product.id,
        "position": 0,
        "strategy": "rules" if variant == "A" else "popularity",
        "experiment_id": experiment,
        "variant": variant,
        "explanation_source": source,
        "evidence_check": check,
        "cached": False,
        "created_at": at,
        "attributable_until": at + 24 * H,
    })  # fmt: skip


def event(user, product, action, at):
    return Interaction(user_id=user.id, product_id=product.id, action=action, created_at=at)


def test_latest_impression_in_window_gets_the_credit(db):
    u, v = make_user("u"), make_user("v")
    p1, p2 = make_product("One", "Home", [], "1.00"), make_product("Two", "Home", [], "2.00")
    experiment = Experiment(name="ab", variants=[], created_at=T0 - H)
    shown_twice = uuid.uuid4()
    with session_scope(db) as session:
        session.add_all([u, v, p1, p2, experiment])
        session.flush()
        repo.insert_impressions(
            session=session,
            rows=[
                impression(
                    u, p1, "A", T0, experiment.id, response=shown_twice, source="llm", check=True
                ),  # fmt: skip
                impression(
                    u, p2, "A", T0, experiment.id, response=shown_twice, source="llm", check=True
                ),  # fmt: skip
                impression(u, p1, "A", T0 + H, experiment.id),  # the same product again
                impression(v, p1, "B", T0, experiment.id, check=False),
            ],
        )
        session.add_all(
            [
                event(u, p1, "click", T0 + 2 * H),  # → the later impression of p1
                event(u, p1, "click", T0 + 3 * H),  # a second click: still one clicked impression
                event(u, p1, "purchase", T0 + 3 * H),
                event(u, p2, "click", T0 + 30 * H),  # outside p2's 24 h window
                event(v, p1, "add_to_cart", T0 - 2 * H),  # before the impression
                event(v, p1, "click", T0 + H),
                event(v, p1, "view", T0 + H),  # views are not attributed
            ]
        )
    with Session(db) as session:
        counts = {
            c.variant: c
            for c in repo.variant_counts(session=session, experiment_id=experiment.id, since=T0 - H)
        }
        assert counts["A"] == repo.VariantCounts("A", 1, 3, 1, 0, 1, 1)
        assert counts["B"] == repo.VariantCounts("B", 1, 1, 1, 0, 0, 0)
        # Stopped half an hour in: the repeat impression (which drew the click) is not counted.
        early = repo.variant_counts(
            session=session, experiment_id=experiment.id, since=T0 - H, until=T0 + H / 2
        )
        assert {c.variant: (c.impressions, c.clicks) for c in early} == {"A": (2, 0), "B": (1, 1)}

        by_strategy = repo.counts_by(session=session, column="strategy", since=T0 - H)
        assert [(g.key, g.impressions, g.clicks, g.purchases) for g in by_strategy] == [
            ("popularity", 1, 1, 0),
            ("rules", 3, 1, 1),
        ]
        by_source = repo.counts_by(session=session, column="explanation_source", since=T0 - H)
        assert [(g.key, g.impressions, g.clicks) for g in by_source] == [
            ("llm", 2, 0),
            ("template", 2, 2),
        ]
        (day,) = repo.daily_counts(session=session, since=T0 - H)
        assert day == repo.DayCounts(
            day="2026-03-02",
            impressions=4,
            clicks=2,
            responses=3,
            llm_responses=1,
            checked_responses=2,
            passed_responses=1,
        )
        assert repo.daily_counts(session=session, since=T0 + 2 * H) == []
