"""shopper segments and the location signal

K-means segments (the newest run, its segments and each clustered user's segment)
and nullable coordinates on users and products for the optional location boost.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segment_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("n_users", sa.Integer(), nullable=False),
        sa.Column("silhouette", sa.Float(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "segment",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("top_categories", sa.JSON(), nullable=False),
        sa.Column("avg_price", sa.Float(), nullable=False),
        sa.Column("centroid", sa.JSON(), nullable=False),
        sa.Column("popular", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["segment_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "segment"),
    )
    op.create_table(
        "user_segment",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["segment_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("user_segment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_segment_run_id"), ["run_id"], unique=False)
    # Plain ALTERs (SQLite ≥ 3.35 has DROP COLUMN): a batch copy of app_user would drop and
    # recreate it, and with foreign keys on that cascades into every interaction.
    for table in ("app_user", "product"):
        op.add_column(table, sa.Column("latitude", sa.Float(), nullable=True))
        op.add_column(table, sa.Column("longitude", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in ("product", "app_user"):
        op.drop_column(table, "longitude")
        op.drop_column(table, "latitude")
    with op.batch_alter_table("user_segment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_segment_run_id"))
    op.drop_table("user_segment")
    op.drop_table("segment")
    op.drop_table("segment_run")
