"""patients are admitted or discharged (discharged_at); the history of their details

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 03:00:00
"""

import sqlalchemy as sa
from alembic import op

import app.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False,
                                      server_default="admitted"))
        batch_op.add_column(sa.Column("discharged_at", app.models.UTCDateTime(),
                                      nullable=True))
    op.create_table(
        "patient_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=32), nullable=False),
        sa.Column("time", app.models.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("patient_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_changes_patient_id"), ["patient_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patient_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_changes_patient_id"))
    op.drop_table("patient_changes")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("discharged_at")
        batch_op.drop_column("status")
