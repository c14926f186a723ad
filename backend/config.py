"""Settings: the only place environment variables are read.

Every component receives what it needs from a ``Settings`` instance built once in the app
factory or the CLI, so tests can build their own with explicit values.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


class Settings(BaseSettings):
    """Typed configuration with embedded defaults: SQLite, local Chroma, in-process cache."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    redis_url: str | None = None
    chroma_path: Path | None = None
    chroma_url: AnyHttpUrl | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: AnyHttpUrl | None = None
    llm_model: str = "gpt-4o-mini"
    llm_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    llm_max_tokens: int = Field(default=150, ge=16, le=4096)
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    seed_dir: Path = PROJECT_ROOT / "seed_data"

    default_top_n: int = Field(default=5, ge=1, le=50)
    max_top_n: int = Field(default=50, ge=1, le=200)
    max_page_size: int = Field(default=100, ge=1, le=1000)
    cache_ttl_seconds: int = Field(default=3600, ge=0)
    default_strategy: str = "weighted"
    # Half-life of an interaction's weight in the improved scorer, in days.
    interaction_half_life_days: float = Field(default=30.0, gt=0)
    # How often the engine asks the database whether the catalog changed (and rebuilds if so).
    snapshot_refresh_seconds: float = Field(default=5.0, ge=0)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _database_url_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("openai_api_key")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'shopwise.db'}"
        if self.chroma_path is None:
            self.chroma_path = self.data_dir / "chroma"
        if self.default_top_n > self.max_top_n:
            raise ValueError("DEFAULT_TOP_N must not exceed MAX_TOP_N")
        if not self.prompts_dir.is_dir():
            raise ValueError(f"PROMPTS_DIR {self.prompts_dir} is not a directory")
        return self

    @property
    def llm_enabled(self) -> bool:
        return self.openai_api_key is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SettingsError(RuntimeError):
    """Raised when the environment holds invalid configuration; names each bad variable."""


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's error into one message naming the variables."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(part) for part in err["loc"]).upper() or "SETTINGS"
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
