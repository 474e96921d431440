"""Idempotency-Key of API writes: the claimed request and its stored response

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 05:00:00
"""

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("mimetype", sa.String(length=128), nullable=True),
        sa.Column("location", sa.String(length=1000), nullable=True),
        sa.Column("created_at", app.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_sha256"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_created_at"), ["created_at"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_idempotency_keys_patient_id"), ["patient_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_patient_id"))
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))
    op.drop_table("idempotency_keys")
