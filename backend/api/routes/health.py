from __future__ import annotations

from fastapi import APIRouter, Response

from backend.api.deps import ComponentsDep
from backend.api.schemas import HealthReport
from backend.services.health import check_health

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Status of the database, engine index, cache and LLM",
    responses={503: {"model": HealthReport, "description": "The database is unreachable"}},
)
def health(components: ComponentsDep, response: Response) -> HealthReport:
    report = check_health(
        db=components.db,
        snapshots=components.snapshots,
        cache=components.cache,
        llm_mode=components.llm_mode,
    )
    if report.status == "down":
        response.status_code = 503
    return report
