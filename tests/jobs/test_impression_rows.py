"""The impression writer's rows, every column, on both databases (PostgreSQL: through COPY,
where no column type converts the values on the way in)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa

from backend.db.engine import session_scope
from backend.db.models import Experiment, RecAnalytics
from backend.experiments.model import ExperimentRef
from backend.jobs.impressions import ImpressionLogger
from backend.services.schemas import RecommendationResult, RecommendedProduct
from tests.factories import make_user

COLUMNS = [
    "user_id", "product_id", "position", "strategy", "experiment_id", "variant",
    "explanation_source", "evidence_check", "cached", "created_at", "attributable_until",
]  # fmt: skip


def answer(user_id: uuid.UUID, products: list[uuid.UUID], **fields: object) -> RecommendationResult:
    """The fields the writer reads (an answer's other fields do not reach the log)."""
    return RecommendationResult.model_construct(
        user_id=user_id,
        recommended_products=[RecommendedProduct.model_construct(id=p) for p in products],
        **fields,
    )


def test_each_product_of_each_answer_is_one_row_with_these_values(db):
    user = make_user("shown")
    experiment = Experiment(name="ab", variants=[])
    with session_scope(db) as session:
        session.add_all([user, experiment])
        session.flush()
        user_id, experiment_id = user.id, experiment.id
    p1, p2, p3 = (uuid.uuid5(uuid.NAMESPACE_URL, f"product:{n}") for n in "abc")
    logger = ImpressionLogger(db=db)
    two_hours_east = timezone(timedelta(hours=2))
    logger.log(
        answer(user_id, [p1, p2], algorithm="hybrid", explanation_source="llm",
               fallback_reason=None, cached=False,
               experiment=ExperimentRef.model_construct(id=experiment_id, variant="B")),
        at=datetime(2026, 3, 2, 12, 0, tzinfo=two_hours_east),  # 10:00 UTC
        window=timedelta(hours=6),
    )  # fmt: skip
    logger.log(
        answer(user_id, [p3], algorithm="rules", explanation_source="template",
               fallback_reason="check_failed:unsupported_claim", cached=True, experiment=None),
        at=datetime(2026, 3, 2, 11, 0, tzinfo=UTC),
        window=timedelta(hours=24),
    )  # fmt: skip
    assert logger.flush() == 3

    with session_scope(db) as session:
        stored = session.execute(sa.select(RecAnalytics).order_by(sa.text("id"))).scalars().all()
        rows = [tuple(getattr(r, c) for c in COLUMNS) for r in stored]
        responses = [r.response_id for r in stored]
    ten, eleven = datetime(2026, 3, 2, 10, 0, tzinfo=UTC), datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert rows == [
        (user_id, p1, 0, "hybrid", experiment_id, "B", "llm", True, False,
         ten, ten + timedelta(hours=6)),
        (user_id, p2, 1, "hybrid", experiment_id, "B", "llm", True, False,
         ten, ten + timedelta(hours=6)),
        (user_id, p3, 0, "rules", None, None, "template", False, True,
         eleven, eleven + timedelta(hours=24)),
    ]  # fmt: skip
    assert responses[0] == responses[1] != responses[2]  # one id per answer
    assert logger.written == 3 and logger.dropped == 0
