"""Read-only state for the operator's dashboard: catalog, index and models; offline evaluation."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from backend.api.deps import EngineDep, LLMModeDep, SettingsDep, SnapshotsDep
from backend.services.admin_status import EvaluationReport, Overview, overview, read_evaluation

router = APIRouter(prefix="/admin", tags=["dashboard"])


@router.get(
    "/overview",
    response_model=Overview,
    summary="Catalog size, engine snapshot, vector index and the newest model versions",
)
async def get_overview(db: EngineDep, snapshots: SnapshotsDep, mode: LLMModeDep) -> Overview:
    return await run_in_threadpool(overview, db=db, snapshots=snapshots, explanations=mode)


@router.get(
    "/evaluation",
    response_model=EvaluationReport,
    summary="The latest offline evaluation (written by `shopwise evaluate`)",
    responses={404: {"description": "No evaluation has been run"}},
)
def get_evaluation(settings: SettingsDep) -> EvaluationReport:
    return read_evaluation(settings.evaluation_dir)
