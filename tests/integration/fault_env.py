"""The fault matrix's world: the app under test over a cuttable PostgreSQL, its own Redis and an
embedded Chroma (``Env``), with the LLM answered at the OpenAI edge (``LLMStub``)."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from backend.db import crud
from backend.db.engine import make_engine
from backend.jobs.indexing import Indexer
from backend.recommender.vector_store import VectorStore
from backend.wiring import Components
from tests.factories import Shop
from tests.integration.conftest import RedisProcess, TcpProxy
from tests.recommender.fakes import FakeEmbedder

HANG = 10.0  # a request taking longer than this counts as a hang


# --- the LLM at the OpenAI edge ----------------------------------------------------------


class LLMStub:
    """respx side effect: a checked-answer-shaped completion, or the fault of the moment."""

    def __init__(self) -> None:
        self.mode = "good"
        self.calls = 0
        self.read_timeouts: list[float] = []  # what the client allowed each call

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        self.read_timeouts.append(float(request.extensions["timeout"]["read"]))
        if self.mode == "429":
            return httpx.Response(
                429, json={"error": {"message": "slow down"}}, headers={"retry-after": "0"}
            )
        if self.mode == "500":
            return httpx.Response(500, json={"error": {"message": "overloaded"}})
        if self.mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if self.mode == "garbage":
            return httpx.Response(
                200, content=b"\x00garbage{", headers={"content-type": "application/json"}
            )
        body = json.loads(request.content)
        prompt = next((m["content"] for m in body["messages"] if m["role"] == "user"), "")
        found = re.search(r"each of: (.*)\.", prompt)
        refs = found.group(1).split(", ") if found else []
        text = json.dumps(
            {
                "intro": "Hi there, here are your picks.",
                "reasons": [{"product_id": ref, "reason": "A fine match."} for ref in refs],
            }
        )
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-fault",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
            },
        )


# --- the environment -----------------------------------------------------------------------


@dataclass
class Env:
    tmp_path: Path
    shop: Shop
    proxy: TcpProxy
    postgres_url: str  # direct, for the test's own checks
    redis: RedisProcess
    llm: LLMStub
    chroma_path: Path
    app_database_url: str  # through the proxy
    components: Components | None = None
    api: TestClient | None = None
    statuses: list[tuple[str, int]] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)  # event_id -> last status
    locker: sa.engine.Connection | None = None
    admin: sa.engine.Engine | None = None
    calls: int = 0

    # -- requests --

    def call(self, kind: str, method: str, url: str, **kwargs: Any) -> Any:
        assert self.api is not None
        started = time.monotonic()
        response = self.api.request(method, url, **kwargs)
        elapsed = time.monotonic() - started
        assert elapsed < HANG, f"{kind} hung for {elapsed:.1f} s"
        assert response.status_code != 500, f"{kind}: 500 {response.text}"
        if response.status_code == 503 and not url.startswith("/health"):
            detail = response.json()["detail"]
            assert isinstance(detail, str) and len(detail) > 10, detail
        self.statuses.append((kind, response.status_code))
        return response

    def workload(self) -> dict[str, Any]:
        """One of each kind of request a storefront sends."""
        self.calls += 1
        alice, dave, bob = (self.shop.users[u].id for u in ("alice", "dave", "bob"))
        products = list(self.shop.products.values())
        product = products[self.calls % len(products)]
        event_id = f"fault-{uuid.uuid4().hex[:10]}"
        out = {
            "recommend_cached": self.call("recommend_cached", "GET", f"/recommend/{alice}"),
            # A price bound of its own each time (never in the recommendation cache) and a
            # list length of its own each round (never in the explanation cache).
            "recommend_fresh": self.call(
                "recommend_fresh",
                "GET",
                f"/recommend/{dave}",
                # The model within the request (the default would answer pending at once).
                params={
                    "top_n": 1 + self.calls % 5,
                    "max_price": 1000 + self.calls,
                    "explain": "wait",
                },
            ),
            "search": self.call("search", "GET", "/search", params={"q": "wireless audio"}),
            "similar": self.call("similar", "GET", f"/products/{products[0].id}/similar"),
            "event": self.call(
                "event",
                "POST",
                "/events",
                json={
                    "user_id": str(bob),
                    "action": "view",
                    "product_id": str(product.id),
                    "event_id": event_id,
                },
            ),
        }
        self.events[event_id] = out["event"].status_code
        return out

    def retry_refused_events(self) -> None:
        bob = self.shop.users["bob"].id
        product = next(iter(self.shop.products.values()))
        for event_id, status in list(self.events.items()):
            if status >= 300:
                body = {"user_id": str(bob), "action": "view", "product_id": str(product.id)}
                r = self.call("event_retry", "POST", "/events", json=body | {"event_id": event_id})
                assert r.status_code in (200, 201), r.text
                self.events[event_id] = r.status_code

    # -- faults' tools --

    def pg(self) -> sa.engine.Engine:
        if self.admin is None:
            self.admin = sa.create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        return self.admin

    def terminate_app_connections(self) -> int:
        with self.pg().connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )

    def lock_shoppers(self) -> None:
        self.locker = sa.create_engine(self.postgres_url).connect()
        self.locker.execute(sa.text("LOCK TABLE app_user IN ACCESS EXCLUSIVE MODE"))

    def unlock_shoppers(self) -> None:
        assert self.locker is not None
        self.locker.rollback()
        self.locker.close()
        self.locker.engine.dispose()
        self.locker = None

    def rebuild_index(self) -> None:
        engine = make_engine(self.postgres_url)
        build_index(engine, self.chroma_path)
        engine.dispose()

    def corrupt_index(self) -> None:
        for path in self.chroma_path.rglob("*"):
            if path.is_file():
                path.write_bytes(b"not a chroma file " * 64)


def remove_chroma(env: Env) -> None:
    shutil.rmtree(env.chroma_path)


def build_index(engine: sa.engine.Engine, folder: Path) -> None:
    """What `shopwise index` does (from another process): a fresh store in ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    store = VectorStore.open(path=folder)
    with Session(engine) as session:
        products = crud.load_catalog(session=session)
    Indexer(embedder=FakeEmbedder(dim=64), store=store, db=engine).rebuild(products)
    store._drop_client()
