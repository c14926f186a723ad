"""Settings the tests share: the SQLite file of a test and the admin token of the prompt API."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from backend.config import Settings

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shopwise.db'}"


def with_admin_token(settings: Settings) -> Settings:
    """The same settings with the prompt admin API on (it is off without a token)."""
    return settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})
