"""Users, roles and scoped tokens (issue 15): ``users``, ``memberships``, ``audit``; tokens belong to
a user and may carry scopes, a project or service they are limited to, and an expiry.

What an earlier hub had keeps working: when there are tokens (a hub that was used), an ``admin`` user
is made (a hub admin, with no password yet: the hub sets one on its next start and prints it), every
token becomes the admin's with every scope, and the admin owns every project.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(128), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(256), nullable=True),
        sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("last_login", sa.DateTime(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("project_id", "user_id"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user", sa.String(64), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("project", sa.String(64), nullable=True),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("remote_ip", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_project", "audit", ["project"])
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("scopes", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("project_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("service_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_ip", sa.String(64), nullable=True))
        batch.create_foreign_key(
            "fk_tokens_user_id", "users", ["user_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_foreign_key(
            "fk_tokens_project_id", "projects", ["project_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_foreign_key(
            "fk_tokens_service_id", "services", ["service_id"], ["id"], ondelete="CASCADE"
        )

    conn = op.get_bind()
    had_tokens = conn.execute(sa.text("SELECT COUNT(*) FROM tokens")).scalar()
    if had_tokens:  # a hub that was used: its tokens and projects become the admin's
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        conn.execute(
            users.insert().values(
                name="admin",
                display_name="Administrator",
                password_hash=None,
                admin=True,
                disabled=False,
                created=now,
                failed_logins=0,
                session_version=1,
            )
        )
        admin_id = conn.execute(sa.text("SELECT id FROM users WHERE name = 'admin'")).scalar()
        conn.execute(sa.text("UPDATE tokens SET user_id = :u"), {"u": admin_id})
        projects = conn.execute(sa.text("SELECT id FROM projects")).scalars().all()
        memberships = sa.table(
            "memberships",
            sa.column("project_id", sa.Integer),
            sa.column("user_id", sa.Integer),
            sa.column("role", sa.String),
            sa.column("created", sa.DateTime),
        )
        for project_id in projects:
            conn.execute(
                memberships.insert().values(
                    project_id=project_id, user_id=admin_id, role="owner", created=now
                )
            )


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint("fk_tokens_service_id", type_="foreignkey")
        batch.drop_constraint("fk_tokens_project_id", type_="foreignkey")
        batch.drop_constraint("fk_tokens_user_id", type_="foreignkey")
        for column in ("last_ip", "expires_at", "service_id", "project_id", "scopes", "user_id"):
            batch.drop_column(column)
    op.drop_index("ix_audit_project", "audit")
    op.drop_index("ix_audit_at", "audit")
    op.drop_table("audit")
    op.drop_table("memberships")
    op.drop_table("users")
