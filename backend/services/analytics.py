"""Online metrics from the impression log: click-through and conversion by strategy,
by explanation source, and per day with the LLM share and the evidence-check pass rate.

Definitions (the same attribution as the experiment reports, see ``db.crud.analytics``):
``clicks`` are impressions followed by a click within their window, ``ctr`` is clicks /
impressions; ``conversions`` are impressions followed by a purchase, ``conversion_rate`` is
conversions / impressions. ``llm_share`` and ``evidence_check_pass_rate`` count responses
(one per recommendation answer), the latter among responses whose LLM text was checked.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.db.crud import analytics as analytics_queries
from backend.db.models import utcnow


class StrategyStats(BaseModel):
    strategy: str
    impressions: int
    clicks: int
    ctr: float
    conversions: int
    conversion_rate: float


class SourceStats(BaseModel):
    source: str
    impressions: int
    clicks: int
    ctr: float


class DailyStats(BaseModel):
    date: date
    impressions: int
    clicks: int
    ctr: float
    llm_share: float = Field(description="Responses explained by the LLM / responses")
    evidence_check_pass_rate: float | None = Field(
        description="Checked LLM responses that passed / checked ones (None: none checked)"
    )


class AnalyticsSummary(BaseModel):
    by_strategy: list[StrategyStats]
    by_explanation_source: list[SourceStats]
    daily: list[DailyStats]


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


class AnalyticsService:
    def __init__(self, *, db: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def summary(self, *, days: int) -> AnalyticsSummary:
        """The last ``days`` UTC days, today included."""
        today = self.clock().astimezone(UTC).date()
        since = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)
        with Session(self.db) as session:
            strategies = analytics_queries.counts_by(
                session=session, column="strategy", since=since
            )
            sources = analytics_queries.counts_by(
                session=session, column="explanation_source", since=since
            )
            days_ = analytics_queries.daily_counts(session=session, since=since)
        return AnalyticsSummary(
            by_strategy=[
                StrategyStats(
                    strategy=s.key,
                    impressions=s.impressions,
                    clicks=s.clicks,
                    ctr=_rate(s.clicks, s.impressions),
                    conversions=s.purchases,
                    conversion_rate=_rate(s.purchases, s.impressions),
                )
                for s in strategies
            ],
            by_explanation_source=[
                SourceStats(
                    source=s.key,
                    impressions=s.impressions,
                    clicks=s.clicks,
                    ctr=_rate(s.clicks, s.impressions),
                )
                for s in sources
            ],
            daily=[
                DailyStats(
                    date=date.fromisoformat(d.day),
                    impressions=d.impressions,
                    clicks=d.clicks,
                    ctr=_rate(d.clicks, d.impressions),
                    llm_share=_rate(d.llm_responses, d.responses),
                    evidence_check_pass_rate=(
                        _rate(d.passed_responses, d.checked_responses)
                        if d.checked_responses
                        else None
                    ),
                )
                for d in days_
            ],
        )
