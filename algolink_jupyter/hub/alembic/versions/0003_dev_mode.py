"""Development-mode services: a URL of a running model server instead of a bundle (issue 8).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot alter a table in place, so Alembic copies it there.
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("dev_url", sa.String(2048), nullable=True))
        batch.add_column(sa.Column("dev_token", sa.String(256), nullable=True))
        batch.add_column(sa.Column("dev_manifest", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("dev_checked_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("dev_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        for column in ("dev_error", "dev_checked_at", "dev_manifest", "dev_token", "dev_url"):
            batch.drop_column(column)
