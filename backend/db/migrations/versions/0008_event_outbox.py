"""event outbox: accepted events not yet safely on the stream

A row per accepted event, written with the event and removed once the event is on
the Redis stream (or processed); a sweep republishes what a dead process left behind.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("interaction_id", sa.Uuid(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("interaction_id"),
    )
    op.create_index("ix_event_outbox_stored_at", "event_outbox", ["stored_at"])


def downgrade() -> None:
    op.drop_index("ix_event_outbox_stored_at", table_name="event_outbox")
    op.drop_table("event_outbox")
