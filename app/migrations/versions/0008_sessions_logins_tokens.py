"""server-side login sessions, failed logins and lockouts; token expiry and last use

Existing tokens get an expiry 90 days from the upgrade (they never expired before).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 04:00:00
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", app.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", app.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", app.models.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", app.models.UTCDateTime(), nullable=True),
        sa.Column("client_addr", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_sha256"),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("time", app.models.UTCDateTime(), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("client_addr", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_failures_time"), ["time"], unique=False)
        batch_op.create_index(batch_op.f("ix_login_failures_account"), ["account"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_login_failures_client_addr"), ["client_addr"],
                              unique=False)
    op.create_table(
        "login_lockouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.models.UTCDateTime(), nullable=False),
        sa.Column("until", app.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_lockouts", schema=None) as batch_op:
        batch_op.create_index("ix_login_lockouts_scope_key", ["scope", "key"], unique=False)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", app.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", app.models.UTCDateTime(), nullable=True))
    tokens = sa.table("api_tokens", sa.column("expires_at", app.models.UTCDateTime()))
    op.execute(tokens.update().values(
        expires_at=datetime.now(UTC) + timedelta(days=90)))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("login_lockouts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_lockouts_scope_key")
    op.drop_table("login_lockouts")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_failures_client_addr"))
        batch_op.drop_index(batch_op.f("ix_login_failures_account"))
        batch_op.drop_index(batch_op.f("ix_login_failures_time"))
    op.drop_table("login_failures")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))
    op.drop_table("sessions")
