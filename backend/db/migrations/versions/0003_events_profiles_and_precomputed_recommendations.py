"""events profiles and precomputed recommendations

Reserved for issue 6 (events, cache, worker); the chain of revisions is laid out in advance so parallel work
does not create several Alembic heads.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
