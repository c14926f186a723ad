from __future__ import annotations

from fastapi import APIRouter

from backend import __version__
from backend.api.deps import ComponentsDep
from backend.api.schemas import ServiceInfo

router = APIRouter(tags=["service"])


@router.get("/", response_model=ServiceInfo, summary="What this service is and where to start")
def service_info(components: ComponentsDep) -> ServiceInfo:
    return ServiceInfo(
        name="Shopwise",
        version=__version__,
        docs="/docs",
        explanations=components.llm_mode,
        endpoints=[
            "/health",
            "/users",
            "/products",
            "/categories",
            "/recommend/{user_id}",
            "/events",
        ],
    )
