"""issued tokens, and event ids scoped to their sender

Every bearer token issued is recorded (``auth_token``, keyed by the JWT's jti) so any token
can be revoked, and a shopper token dies with the key that minted it or the shopper it
belongs to. An ``event_id`` is unique per sender (``event_source``), no longer across the
whole service; events stored before senders were recorded are marked ``legacy``.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite reflects the old constraint without a name; batch mode needs one to drop it.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
_OLD_UNIQUE = "interaction_event_id_key"  # PostgreSQL's name for the 0001 constraint


def _unique_on_event_id() -> str:
    for found in sa.inspect(op.get_bind()).get_unique_constraints("interaction"):
        if found["column_names"] == ["event_id"] and found["name"]:
            return str(found["name"])
    return "uq_interaction_event_id"


def upgrade() -> None:
    op.create_table(
        "auth_token",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_key.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auth_token_user_id", "auth_token", ["user_id"])
    op.create_index("ix_auth_token_api_key_id", "auth_token", ["api_key_id"])
    op.create_index("ix_auth_token_expires_at", "auth_token", ["expires_at"])

    old = _unique_on_event_id()
    with op.batch_alter_table("interaction", naming_convention=_NAMING) as batch_op:
        batch_op.add_column(sa.Column("event_source", sa.String(length=100), nullable=True))
        batch_op.drop_constraint(old, type_="unique")
        batch_op.create_unique_constraint("uq_interaction_event", ["event_source", "event_id"])
    # Who sent the events already stored is unknown: their ids form a namespace of their own,
    # which a retry that straddles the upgrade still finds (services.track).
    op.execute("UPDATE interaction SET event_source = 'legacy' WHERE event_id IS NOT NULL")


def downgrade() -> None:
    # Globally unique again: of ids used by several senders only the oldest row keeps its id
    # (the events themselves all stay).
    op.execute(
        "UPDATE interaction SET event_id = NULL WHERE event_id IS NOT NULL AND EXISTS ("
        " SELECT 1 FROM interaction AS other WHERE other.event_id = interaction.event_id"
        " AND (other.created_at < interaction.created_at"
        " OR (other.created_at = interaction.created_at AND other.id < interaction.id)))"
    )
    with op.batch_alter_table("interaction") as batch_op:
        batch_op.drop_constraint("uq_interaction_event", type_="unique")
        batch_op.drop_column("event_source")
        batch_op.create_unique_constraint(_OLD_UNIQUE, ["event_id"])
    op.drop_index("ix_auth_token_expires_at", table_name="auth_token")
    op.drop_index("ix_auth_token_api_key_id", table_name="auth_token")
    op.drop_index("ix_auth_token_user_id", table_name="auth_token")
    op.drop_table("auth_token")
