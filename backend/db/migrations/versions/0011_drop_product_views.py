"""product.views is gone

A product's views are its view events, counted when the catalog is read
(``crud.catalog.view_counts``); nothing has written the column since, so a raw SQL reader
saw 0 for every product. Going back down re-adds it NOT NULL and 0 (as 0001's model wrote
it), filled with 0s: the counts were never stored there.

Both directions alter the table in place (``recreate="never"``; SQLite has had DROP COLUMN
since 3.35): no copy of the whole table. (A copy-and-rename would also be safe now:
``backend.db.migrate`` runs migrations with SQLite's foreign keys off, so dropping the old
table cascades into nothing.)

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product", recreate="never") as batch_op:
        batch_op.drop_column("views")


def downgrade() -> None:
    # SQLite adds a NOT NULL column in place only with a default, so the server default
    # stays (0001 had none; the code of that revision always writes the column anyway).
    with op.batch_alter_table("product", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("views", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
