"""Hardening (issue 12): who registered a service, and room for a sealed development token.

The development token is no longer stored as it is: the hub seals it with a key kept outside the
database (``<data>/secret_key``); a sealed token is longer than the plain one was. Tokens stored in
clear by an earlier hub are sealed when the hub starts (``Hub.seal_dev_tokens``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("created_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("created_by_token", sa.Integer(), nullable=True))
        batch.alter_column(
            "dev_token", existing_type=sa.String(256), type_=sa.String(1024), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.alter_column(
            "dev_token", existing_type=sa.String(1024), type_=sa.String(256), existing_nullable=True
        )
        batch.drop_column("created_by_token")
        batch.drop_column("created_by")
