"""The demo catalog (seed_data) in a temp SQLite database, and a chat service over it.

Loaded once per test session: the dialogues only read it (feedback lives in the cache).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from backend.chat.ranking import ChatRetriever, KeywordRanker
from backend.chat.schemas import ChatRequest, ChatResponse
from backend.chat.service import ChatService, DatabaseShoppers
from backend.chat.vocabulary import ChatVocabulary
from backend.config import PROJECT_ROOT
from backend.db.engine import make_engine
from backend.db.migrate import upgrade
from backend.db.seed import load_seed
from backend.infra.cache import MemoryCache
from backend.llm.prompts import PromptLibrary
from backend.recommender.snapshot import CatalogSnapshot, SnapshotManager
from backend.services.snapshots import snapshot_manager


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("demo") / "demo.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    load_seed(engine, PROJECT_ROOT / "seed_data")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_snapshots(demo_db: Engine) -> SnapshotManager:
    return snapshot_manager(demo_db)


@pytest.fixture(scope="session")
def demo_snapshot(demo_snapshots: SnapshotManager) -> CatalogSnapshot:
    return demo_snapshots.get()


@pytest.fixture(scope="session")
def vocabulary(demo_snapshot: CatalogSnapshot) -> ChatVocabulary:
    return ChatVocabulary.build(demo_snapshot)


@pytest.fixture
def chat(demo_db: Engine, demo_snapshots: SnapshotManager) -> ChatService:
    return ChatService(
        snapshots=demo_snapshots,
        cache=MemoryCache(),
        prompts=PromptLibrary(PROJECT_ROOT / "prompts"),
        retriever=ChatRetriever(KeywordRanker()),
        shoppers=DatabaseShoppers(demo_db),
    )


class Conversation:
    """Sends turns on one session, like the UI does."""

    def __init__(self, service: ChatService, user_id: uuid.UUID | None = None) -> None:
        self.service = service
        self.user_id = user_id
        self.session_id: uuid.UUID | None = None
        self.last: ChatResponse | None = None

    def say(self, message: str = "", **extra: object) -> ChatResponse:
        request = ChatRequest.model_validate(
            {"session_id": self.session_id, "user_id": self.user_id, "message": message, **extra}
        )
        self.last = self.service.chat_turn(request)
        self.session_id = self.last.session_id
        return self.last
