from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from backend.api.deps import ComponentsDep
from backend.api.schemas import HealthReport
from backend.services.explanations import llm_health
from backend.services.health import check_health

router = APIRouter(tags=["service"])


def _report(components: ComponentsDep) -> HealthReport:
    report = check_health(
        db=components.db,
        snapshots=components.snapshots,
        cache=components.cache,
        llm_mode=components.llm_mode,
        events=components.stream,
        worker=components.worker_monitor,
        llm=llm_health(components.llm, components.explanation_stats, components.llm_mode),
        vectors=components.retrieval,
        monitor=components.metrics.dependencies,
        segments=components.segments,
        warmup=components.warmup,
        explanations=(
            components.explanations.jobs if components.explanations is not None else None
        ),
    )
    levels = {"ok": 1.0, "degraded": 0.5, "down": 0.0}
    for name, component in report.components.items():
        components.metrics.component_up.labels(name).set(levels[component.status])
    return report


@router.get(
    "/health",
    response_model=HealthReport,
    summary="Liveness, with the status of the database, engine index, cache and LLM",
)
def health(components: ComponentsDep) -> HealthReport:
    """Always 200 while the process serves: a degraded component degrades answers only."""
    return _report(components)


@router.get(
    "/health/ready",
    response_model=HealthReport,
    summary="Readiness: 503 while warming up or while the service cannot answer (database down)",
    responses={503: {"model": HealthReport, "description": "Not ready"}},
)
def ready(components: ComponentsDep, response: Response) -> HealthReport:
    report = _report(components)
    warming = components.warmup is not None and not components.warmup.ready
    if report.status == "down" or warming:
        response.status_code = 503
    return report


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}}},
)
def metrics(components: ComponentsDep) -> PlainTextResponse:
    _report(components)  # component_up is current at every scrape, not only after /health
    return PlainTextResponse(
        components.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
