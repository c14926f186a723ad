from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backend.main import create_app
from backend.wiring import Components
from tests.factories import Shop


@pytest.fixture
def api(shop: Shop, components: Components) -> Iterator[TestClient]:
    """The app over the tiny shop (the shop exists before the engine snapshot is built)."""
    with TestClient(create_app(components=components)) as test_client:
        yield test_client
