"""A/B experiments: define, list, read, report, stop and promote (the product team's API)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from starlette.concurrency import run_in_threadpool

from backend.api.deps import ExperimentsDep
from backend.api.schemas import Page
from backend.experiments.model import (
    ExperimentCreate,
    ExperimentOut,
    ExperimentReport,
    PromoteIn,
)

router = APIRouter(prefix="/experiments", tags=["experiments"])

ExperimentId = Annotated[uuid.UUID, Path(description="The experiment's id (UUID)")]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1–100)")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")]
_404: dict[int | str, dict[str, Any]] = {404: {"description": "No such experiment"}}


@router.post(
    "",
    response_model=ExperimentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Start an experiment (users are bucketed into its variants at once)",
    responses={
        409: {"description": "Duplicate name, or another experiment is running"},
        422: {"description": "Bad shares, unknown strategy or prompt version"},
    },
)
async def create(experiments: ExperimentsDep, body: ExperimentCreate) -> ExperimentOut:
    return await run_in_threadpool(experiments.create, body)


@router.get("", response_model=Page[ExperimentOut], summary="Experiments, newest first")
async def list_experiments(
    experiments: ExperimentsDep, limit: Limit = 20, offset: Offset = 0
) -> Page[ExperimentOut]:
    page = await run_in_threadpool(experiments.list_experiments, limit=limit, offset=offset)
    return Page[ExperimentOut](items=page.items, total=page.total, limit=limit, offset=offset)


@router.get("/{experiment_id}", response_model=ExperimentOut, responses=_404)
async def get(experiments: ExperimentsDep, experiment_id: ExperimentId) -> ExperimentOut:
    return await run_in_threadpool(experiments.get, experiment_id)


@router.get(
    "/{experiment_id}/report",
    response_model=ExperimentReport,
    summary="Per-variant click-through and conversion with 95% intervals and the verdict",
    responses=_404,
)
async def report(experiments: ExperimentsDep, experiment_id: ExperimentId) -> ExperimentReport:
    return await run_in_threadpool(experiments.report, experiment_id)


@router.post(
    "/{experiment_id}/stop",
    response_model=ExperimentOut,
    summary="Stop bucketing: everyone gets the default configuration again",
    responses={**_404, 409: {"description": "Not running"}},
)
async def stop(experiments: ExperimentsDep, experiment_id: ExperimentId) -> ExperimentOut:
    return await run_in_threadpool(experiments.stop, experiment_id)


@router.post(
    "/{experiment_id}/promote",
    response_model=ExperimentOut,
    summary="Stop bucketing and serve the winner's configuration to everyone",
    responses={
        **_404,
        409: {"description": "Already promoted"},
        422: {"description": "No such variant"},
    },
)
async def promote(
    experiments: ExperimentsDep, experiment_id: ExperimentId, body: PromoteIn
) -> ExperimentOut:
    return await run_in_threadpool(experiments.promote, experiment_id, body.variant)
