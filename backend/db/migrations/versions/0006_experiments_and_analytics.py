"""experiments and recommendation analytics

A/B experiments (variants as a JSON column) and ``rec_analytics``, the impression
log the experiment reports and the online metrics are computed from.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("attribution_window_hours", sa.Integer(), nullable=False),
        sa.Column("winner", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'stopped', 'promoted')", name="ck_experiment_status"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "rec_analytics",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("response_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=40), nullable=False),
        sa.Column("experiment_id", sa.Uuid(), nullable=True),
        sa.Column("variant", sa.String(length=80), nullable=True),
        sa.Column("explanation_source", sa.String(length=16), nullable=False),
        sa.Column("evidence_check", sa.Boolean(), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attributable_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["experiment.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rec_analytics_created_at", "rec_analytics", ["created_at"])
    op.create_index(
        "ix_rec_analytics_user_product_created",
        "rec_analytics",
        ["user_id", "product_id", "created_at"],
    )
    op.create_index(
        "ix_rec_analytics_experiment_variant", "rec_analytics", ["experiment_id", "variant"]
    )


def downgrade() -> None:
    op.drop_index("ix_rec_analytics_experiment_variant", table_name="rec_analytics")
    op.drop_index("ix_rec_analytics_user_product_created", table_name="rec_analytics")
    op.drop_index("ix_rec_analytics_created_at", table_name="rec_analytics")
    op.drop_table("rec_analytics")
    op.drop_table("experiment")
