"""prompt versions

Reserved for issue 4 (LLM explanations and prompt management); the chain of revisions is laid out in advance so parallel work
does not create several Alembic heads.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
