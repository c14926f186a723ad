from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from backend.api.deps import HealthDep, MetricsDep, WarmupDep
from backend.api.schemas import HealthReport

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Liveness, with the status of the database, engine index, cache and LLM",
)
def health(check: HealthDep, warmup: WarmupDep) -> HealthReport:
    """Always 200 while the process serves: a degraded component degrades answers only."""
    return check.report(warmup)


@router.get(
    "/health/ready",
    response_model=HealthReport,
    summary="Readiness: 503 while warming up or while the service cannot answer (database down)",
    responses={503: {"model": HealthReport, "description": "Not ready"}},
)
def ready(check: HealthDep, warmup: WarmupDep, response: Response) -> HealthReport:
    report = check.report(warmup)
    warming = warmup is not None and not warmup.ready
    if report.status == "down" or warming:
        response.status_code = 503
    return report


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(check: HealthDep, warmup: WarmupDep, registry: MetricsDep) -> PlainTextResponse:
    check.report(warmup)  # component_up is current at every scrape, not only after /health
    return PlainTextResponse(
        registry.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
