"""What /serve does (issue 20): per-minute roll-ups of every service's requests, the request log, and
a service's choice to record inputs and outputs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: no copy of the services table (every database here takes them).
    op.add_column(
        "services",
        sa.Column("record_bodies", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "services",
        sa.Column("record_limit", sa.Integer(), nullable=False, server_default="16384"),
    )
    op.create_table(
        "serve_minutes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "service_id",
            sa.Integer(),
            sa.ForeignKey("services.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("minute", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(128), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("client_errors", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.Column("buckets", sa.JSON(), nullable=False),
        sa.Column("model_sum", sa.Float(), nullable=False),
        sa.Column("model_count", sa.Integer(), nullable=False),
        sa.Column("queue_sum", sa.Float(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("service_id", "minute", "version", "command"),
    )
    op.create_index("ix_serve_minutes_minute", "serve_minutes", ["minute"])
    op.create_table(
        "serve_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "service_id",
            sa.Integer(),
            sa.ForeignKey("services.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("command", sa.String(128), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("first_byte", sa.Float(), nullable=True),
        sa.Column("model", sa.Float(), nullable=True),
        sa.Column("queue", sa.Float(), nullable=True),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("user", sa.String(64), nullable=True),
        sa.Column("token", sa.String(64), nullable=True),
        sa.Column("bodies", sa.JSON(), nullable=True),
    )
    op.create_index("ix_serve_requests_service_id", "serve_requests", ["service_id", "id"])
    op.create_index("ix_serve_requests_at", "serve_requests", ["at"])


def downgrade() -> None:
    op.drop_index("ix_serve_requests_at", "serve_requests")
    op.drop_index("ix_serve_requests_service_id", "serve_requests")
    op.drop_table("serve_requests")
    op.drop_index("ix_serve_minutes_minute", "serve_minutes")
    op.drop_table("serve_minutes")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("record_limit")
        batch.drop_column("record_bodies")
