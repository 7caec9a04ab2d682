"""Versions that stay versions (issue 14): aliases, keep-warm time, numbers never given twice, the
environment each version was built in; the service's port is gone (the hub picks a free one for every
process it starts and shows none: services are reached through /serve).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("keep_warm", sa.Integer(), nullable=False, server_default="600"))
        batch.add_column(
            sa.Column("last_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("last_api_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch.drop_column("port")
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("env_key", sa.String(128), nullable=True))
    # The numbers given so far: the highest of each service's versions.
    op.execute(
        "UPDATE services SET "
        "last_version = COALESCE((SELECT MAX(number) FROM versions "
        "WHERE versions.service_id = services.id), 0), "
        "last_api_version = COALESCE((SELECT MAX(api_version) FROM versions "
        "WHERE versions.service_id = services.id), 0)"
    )
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "service_id",
            sa.Integer(),
            sa.ForeignKey("services.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=True),
        sa.UniqueConstraint("service_id", "name"),
    )


def downgrade() -> None:
    op.drop_table("aliases")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("env_key")
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("port", sa.Integer(), nullable=True))
        batch.drop_column("last_api_version")
        batch.drop_column("last_version")
        batch.drop_column("keep_warm")
