from __future__ import annotations

from fastapi import APIRouter

from backend import __version__
from backend.api.deps import LLMModeDep
from backend.api.schemas import ServiceInfo

router = APIRouter(tags=["service"])


@router.get("/", response_model=ServiceInfo, summary="What this service is and where to start")
def service_info(mode: LLMModeDep) -> ServiceInfo:
    return ServiceInfo(
        name="Shopwise",
        version=__version__,
        docs="/docs",
        explanations=mode,
        endpoints=[
            "/health",
            "/users",
            "/products",
            "/categories",
            "/recommend/{user_id}",
            "/events",
        ],
    )
