"""prompt versions

Runtime edits of the templates in ``prompts/``: one row per stored version, the
newest per name is in effect; a row without source means "the file again".

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version", name="uq_prompt_version_name"),
    )
    with op.batch_alter_table("prompt_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_version_name"), ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prompt_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prompt_version_name"))
    op.drop_table("prompt_version")
