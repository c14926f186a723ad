"""Every component of a running Shopwise, built once from settings.

Each external system (database, cache, later Chroma, Redis and the LLM) is created here and
nowhere else; services receive what they use as constructor arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from backend.config import Settings
from backend.db import repository
from backend.db.engine import make_engine
from backend.llm.explainer import Explainer, TemplateExplainer
from backend.llm.prompts import PromptLibrary
from backend.recommender.catalog import CatalogSnapshot, SnapshotManager
from backend.recommender.strategies import default_strategies
from backend.services.cache import Cache, MemoryCache
from backend.services.recommend import RecommendationService
from backend.services.track import TrackingService


@dataclass
class Components:
    settings: Settings
    db: Engine
    snapshots: SnapshotManager
    prompts: PromptLibrary
    cache: Cache
    explainer: Explainer
    recommender: RecommendationService
    tracker: TrackingService

    @property
    def llm_mode(self) -> str:
        return "template (no OPENAI_API_KEY)" if not self.settings.llm_enabled else "llm"


def snapshot_manager(db: Engine) -> SnapshotManager:
    def version() -> str:
        with Session(db) as session:
            return repository.catalog_version(session=session)

    def load() -> CatalogSnapshot:
        with Session(db) as session:
            v = repository.catalog_version(session=session)
            products = repository.load_catalog(session=session)
            counts = repository.interaction_counts(session=session)
        return CatalogSnapshot.build(products, counts, version=v)

    return SnapshotManager(load=load, version=version)


def build_components(settings: Settings) -> Components:
    db = make_engine(settings.database_url)
    snapshots = snapshot_manager(db)
    prompts = PromptLibrary(settings.prompts_dir)
    cache: Cache = MemoryCache()
    explainer: Explainer = TemplateExplainer(prompts)
    strategies = default_strategies(half_life_days=settings.interaction_half_life_days)
    return Components(
        settings=settings,
        db=db,
        snapshots=snapshots,
        prompts=prompts,
        cache=cache,
        explainer=explainer,
        recommender=RecommendationService(
            db=db,
            snapshots=snapshots,
            strategies=strategies,
            default_strategy=settings.default_strategy,
            explainer=explainer,
            prompts=prompts,
            cache=cache,
            cache_ttl_seconds=settings.cache_ttl_seconds,
            half_life_days=settings.interaction_half_life_days,
        ),
        tracker=TrackingService(db=db, snapshots=snapshots, cache=cache),
    )
