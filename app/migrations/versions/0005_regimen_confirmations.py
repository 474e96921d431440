"""regimens record who set them and the dosing warnings confirmed; audit rows carry a detail

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("regimens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("set_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("confirmed_warnings", sa.Text(), nullable=True))
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("detail")
    with op.batch_alter_table("regimens", schema=None) as batch_op:
        batch_op.drop_column("confirmed_warnings")
        batch_op.drop_column("set_by")
