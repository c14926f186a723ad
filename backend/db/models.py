"""SQLModel tables: the database is the truth for the catalog, users and interactions.

Cart and wishlist are tables of their own (not derived from the event log on every read):
they change with add/remove events and are read far more often than they change. Search and
purchase history are derived from ``interaction`` (action = search / purchase).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on PostgreSQL and SQLite alike.

    SQLite stores no zone; without this, rows read back from it would be naive and serialise
    without an offset (not a valid RFC 3339 date-time).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return as_utc(value) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return as_utc(value) if value is not None else None


TZDateTime = UTCDateTime()


class Action(StrEnum):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    WISHLIST = "wishlist"
    PURCHASE = "purchase"
    SEARCH = "search"


class Product(SQLModel, table=True):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=300, index=True)
    description: str = Field(default="", sa_type=sa.Text)
    category: str = Field(max_length=120, index=True)
    price: Decimal = Field(sa_type=sa.Numeric(12, 2), ge=0)
    quantity: int = Field(default=0, ge=0)
    image_url: str | None = Field(default=None, max_length=1000)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime, index=True)
    # Where the product is offered (a store or pickup point), for the optional location boost;
    # both None: it ships anywhere.
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=80, sa_column_kwargs={"unique": True}, index=True)
    email: str = Field(max_length=254, sa_column_kwargs={"unique": True})
    full_name: str | None = Field(default=None, max_length=200)
    # Never leaves the service: response models do not have this field.
    password_hash: str | None = Field(default=None, max_length=300)
    is_guest: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
    # The shopper's position (set by the storefront or the shopper), for the location boost.
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class Interaction(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_interaction_user_created", "user_id", "created_at"),
        sa.CheckConstraint(
            "action IN ('view', 'click', 'add_to_cart', 'remove_from_cart', 'wishlist', "
            "'purchase', 'search')",
            name="ck_interaction_action",
        ),
        sa.CheckConstraint(
            "(action = 'search' AND query IS NOT NULL) "
            "OR (action <> 'search' AND product_id IS NOT NULL)",
            name="ck_interaction_target",
        ),
        # An event id is the caller's own idempotency key: one caller cannot use up another's.
        sa.UniqueConstraint("event_source", "event_id", name="uq_interaction_event"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Indexed by ix_interaction_user_created (user_id first).
    user_id: uuid.UUID = Field(foreign_key="app_user.id", ondelete="CASCADE")
    product_id: uuid.UUID | None = Field(
        default=None, foreign_key="product.id", index=True, ondelete="CASCADE"
    )
    action: str = Field(max_length=32)
    query: str | None = Field(default=None, max_length=500)
    # A client-supplied id makes a retried event idempotent (unique per sender when present).
    event_id: str | None = Field(default=None, max_length=128)
    # Who sent it ("key:<id>", "shopper:<user id>", "staff:<name>", "open" with auth off;
    # "legacy" for events stored before senders were recorded): the event id's namespace.
    event_source: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime, index=True)


class CartItem(SQLModel, table=True):
    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    product_id: uuid.UUID = Field(foreign_key="product.id", primary_key=True, ondelete="CASCADE")
    quantity: int = Field(default=1, ge=1)
    added_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class WishlistItem(SQLModel, table=True):
    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    product_id: uuid.UUID = Field(foreign_key="product.id", primary_key=True, ondelete="CASCADE")
    added_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


# --- live profiles, precomputed recommendations, worker bookkeeping -------------------------


class UserPreferences(SQLModel, table=True):
    """A user's running profile, updated in the same transaction as each accepted event.

    ``event_count`` doubles as the profile's version: a precomputed recommendation list is
    only served while it was computed at the current version.
    """

    __tablename__ = "user_preferences"

    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    category_affinity: dict[str, float] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    tag_affinity: dict[str, float] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    # Product ids (as strings), newest first, without repeats.
    recent_items: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    recent_searches: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    action_counts: dict[str, int] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    event_count: int = Field(default=0, ge=0)
    last_event_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class UserRecommendation(SQLModel, table=True):
    """One precomputed recommendation (the worker writes a user's whole list at once)."""

    __tablename__ = "user_recommendations"

    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    product_id: uuid.UUID = Field(foreign_key="product.id", primary_key=True, ondelete="CASCADE")
    rank: int = Field(ge=0)
    score: float
    evidence: dict[str, object] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    strategy: str = Field(max_length=40)
    top_n: int = Field(ge=1)
    profile_version: int = Field(ge=0)
    catalog_version: str = Field(max_length=120)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class CoInteraction(SQLModel, table=True):
    """How often two products were acted on by the same user (``kind``: bought_together)."""

    __tablename__ = "co_interaction"

    product_id: uuid.UUID = Field(foreign_key="product.id", primary_key=True, ondelete="CASCADE")
    other_product_id: uuid.UUID = Field(
        foreign_key="product.id", primary_key=True, ondelete="CASCADE"
    )
    kind: str = Field(max_length=32, primary_key=True)
    count: int = Field(default=0, ge=0)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class ProcessedEvent(SQLModel, table=True):
    """The worker's ledger: an interaction counted into the statistics is never counted again."""

    __tablename__ = "processed_event"

    interaction_id: uuid.UUID = Field(
        foreign_key="interaction.id", primary_key=True, ondelete="CASCADE"
    )
    processed_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class EventOutbox(SQLModel, table=True):
    """Accepted events whose news has not yet reached the stream for sure (the outbox).

    A row is written in the transaction that stores the event and removed once the event is
    on the Redis stream, or processed by the worker; a sweep publishes rows left behind by
    a process that died in between.
    """

    __tablename__ = "event_outbox"

    interaction_id: uuid.UUID = Field(
        foreign_key="interaction.id", primary_key=True, ondelete="CASCADE"
    )
    stored_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime, index=True)


class WorkerCounter(SQLModel, table=True):
    """Named counters shared by every worker (e.g. events since the last retrain)."""

    __tablename__ = "worker_counter"

    name: str = Field(max_length=64, primary_key=True)
    value: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class PromptVersion(SQLModel, table=True):
    """A runtime edit of a template in ``prompts/``; the newest row per name is in effect.

    ``source`` None records a reset: the file in ``prompts/`` is in effect again.
    """

    __tablename__ = "prompt_version"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_prompt_version_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, index=True)
    version: int = Field(ge=1)
    source: str | None = Field(default=None, sa_type=sa.Text)
    author: str = Field(max_length=200)
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class ApiKey(SQLModel, table=True):
    """A storefront's API key. Only a hash of the secret is stored; the key is shown once."""

    __tablename__ = "api_key"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=120)
    # Public part of the key, used to find the row without scanning every hash.
    prefix: str = Field(max_length=16, sa_column_kwargs={"unique": True})
    secret_hash: str = Field(max_length=128)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=TZDateTime)
    # Requests per minute this key may send; None: RATE_LIMIT_PER_KEY_PER_MINUTE.
    rate_limit_per_minute: int | None = Field(default=None)


class AuthToken(SQLModel, table=True):
    """Every bearer token we issued (its ``jti``): a token not listed here, revoked, past its
    expiry or minted by a key since revoked is refused, so any token can be cut off at once.

    A shopper's rows go with the shopper (erasure ends their sessions)."""

    __tablename__ = "auth_token"

    id: str = Field(max_length=64, primary_key=True)  # the JWT's jti
    subject: str = Field(max_length=120)
    role: str = Field(max_length=16)
    user_id: uuid.UUID | None = Field(
        default=None, foreign_key="app_user.id", index=True, ondelete="CASCADE"
    )
    # The storefront key that minted a shopper token; the token dies with it.
    api_key_id: uuid.UUID | None = Field(
        default=None, foreign_key="api_key.id", index=True, ondelete="CASCADE"
    )
    # The most a shopper token may do (the minting key's shopper scopes at minting time).
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
    expires_at: datetime = Field(sa_type=TZDateTime, index=True)
    revoked_at: datetime | None = Field(default=None, sa_type=TZDateTime)


class AdminUser(SQLModel, table=True):
    """A member of the product team: an admin, or an editor who may only edit prompts."""

    __tablename__ = "admin_user"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=80, sa_column_kwargs={"unique": True})
    password_hash: str = Field(max_length=300)
    role: str = Field(max_length=16)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)


class ModelVersion(SQLModel, table=True):
    """One training run of the collaborative models: what was trained, on how much, when."""

    __tablename__ = "model_version"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    version: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    params: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    n_users: int = Field(default=0, ge=0)
    n_items: int = Field(default=0, ge=0)
    n_interactions: int = Field(default=0, ge=0)
    # The interaction count when training started: the retrain threshold counts from here.
    events_seen: int = Field(default=0, ge=0)
    reason: str = Field(default="manual", max_length=32)
    seconds: float = Field(default=0.0, ge=0)
    trained_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime, index=True)


class IndexState(SQLModel, table=True):
    """The vector index's bookkeeping (one row per collection), shown in /health."""

    __tablename__ = "index_state"

    collection: str = Field(max_length=64, primary_key=True)
    model_id: str = Field(max_length=200)
    vectors: int = Field(default=0, ge=0)
    last_run_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
    last_run: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Experiment(SQLModel, table=True):
    """An A/B test over recommendation variants (strategy, blend weights, prompt version).

    ``variants`` is a JSON list of ``backend.experiments.model.VariantSpec``: always read and
    written whole, never queried by field.
    """

    __tablename__ = "experiment"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('running', 'stopped', 'promoted')", name="ck_experiment_status"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=120, sa_column_kwargs={"unique": True})
    description: str = Field(default="", sa_type=sa.Text)
    status: str = Field(default="running", max_length=16)
    variants: list[dict[str, object]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    attribution_window_hours: int = Field(default=24, ge=1)
    winner: str | None = Field(default=None, max_length=80)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
    stopped_at: datetime | None = Field(default=None, sa_type=TZDateTime)


class RecAnalytics(SQLModel, table=True):
    """One recommended product shown to a user (an impression), written in batches.

    ``response_id`` groups the products of one answer. ``attributable_until`` is the end of
    the attribution window, fixed when the impression is logged, so the reports compare plain
    timestamps (portable SQL on SQLite and PostgreSQL). ``product_id`` has no foreign key:
    the analytics history outlives a deleted product; a deleted user's rows go with the user.
    """

    __tablename__ = "rec_analytics"
    __table_args__ = (
        # Attribution: the latest impression of this product to this user before an event.
        sa.Index("ix_rec_analytics_user_product_created", "user_id", "product_id", "created_at"),
        sa.Index("ix_rec_analytics_experiment_variant", "experiment_id", "variant"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
    )
    response_id: uuid.UUID
    user_id: uuid.UUID = Field(foreign_key="app_user.id", ondelete="CASCADE")
    product_id: uuid.UUID
    position: int = Field(ge=0)
    strategy: str = Field(max_length=40)
    experiment_id: uuid.UUID | None = Field(default=None, foreign_key="experiment.id")
    variant: str | None = Field(default=None, max_length=80)
    explanation_source: str = Field(max_length=16)
    # True: an LLM text passed the evidence check; False: it failed; None: nothing checked.
    evidence_check: bool | None = None
    cached: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime, index=True)
    attributable_until: datetime = Field(sa_type=TZDateTime)


# --- shopper segments (K-means, recomputed by the worker) ------------------------------------


class SegmentRun(SQLModel, table=True):
    """One clustering run; only the newest is kept. ``features`` is the feature spec that
    places a new user in the same space as the centroids."""

    __tablename__ = "segment_run"

    id: int | None = Field(default=None, primary_key=True)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=TZDateTime)
    k: int = Field(ge=1)
    n_users: int = Field(ge=0)
    silhouette: float | None = None
    features: dict[str, object] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )


class SegmentRow(SQLModel, table=True):
    """A segment of one run: its label, size, centroid and most chosen items."""

    __tablename__ = "segment"

    run_id: int = Field(foreign_key="segment_run.id", primary_key=True, ondelete="CASCADE")
    segment: int = Field(primary_key=True, ge=0)
    label: str = Field(max_length=200)
    size: int = Field(ge=0)
    top_categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    avg_price: float = 0.0
    centroid: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # [[product id, members who chose it], …], most chosen first.
    popular: list[list[object]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )


class UserSegment(SQLModel, table=True):
    """Which segment each clustered user is in (users with too little signal are not)."""

    __tablename__ = "user_segment"

    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    run_id: int = Field(foreign_key="segment_run.id", index=True, ondelete="CASCADE")
    segment: int = Field(ge=0)
