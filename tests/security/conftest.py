"""The app with authentication on over the tiny shop, and helpers to hold each credential."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from backend.adapters import default_adapters
from backend.config import Settings
from backend.main import create_app
from backend.wiring import Components, build_components
from tests.factories import Shop, build_shop

PASSWORD = "correct horse battery staple"
SECRET = "s" * 40


class Unlimited:
    """No rate limit: these tests send hundreds of requests from one address on purpose."""

    def hit(self, key: str, limit: int, window: int) -> tuple[bool, int]:
        return True, 0

    def peek(self, key: str, window: int) -> int:
        return 0

    def reset_in(self, window: int) -> int:
        return 0


@dataclass
class Secured:
    client: TestClient
    components: Components
    shop: Shop

    def key(self, *scopes: str) -> dict[str, str]:
        return {"X-API-Key": self.components.auth.create_key("storefront", scopes).api_key}

    def login(self, username: str) -> dict[str, str]:
        r = self.client.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return bearer(r.json()["access_token"])

    def mint(self, minter: dict[str, str], user: str | None) -> tuple[dict[str, str], str]:
        """A shopper token for the shop's user (None: a guest) and its id."""
        body = {"user_id": str(self.shop.users[user].id)} if user else {}
        r = self.client.post("/auth/shopper-session", json=body, headers=minter)
        assert r.status_code == 200, r.text
        return bearer(r.json()["access_token"]), r.json()["token_id"]

    def uid(self, user: str) -> str:
        return str(self.shop.users[user].id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def secured(db: Engine, settings: Settings) -> Iterator[Secured]:
    shop = build_shop(db)
    config = settings.model_copy(update={"auth_mode": "on", "jwt_secret": SecretStr(SECRET)})
    adapters = dataclasses.replace(default_adapters(config), rate_limiter=Unlimited())
    components = build_components(config, adapters)
    components.auth.create_admin("ada", PASSWORD, "admin")
    components.auth.create_admin("eddie", PASSWORD, "editor")
    with TestClient(create_app(components=components)) as client:
        yield Secured(client, components, shop)
    components.db.dispose()
