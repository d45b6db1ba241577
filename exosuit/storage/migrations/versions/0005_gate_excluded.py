"""the open gate names who may not decide it (four-eyes), so the queue filters by a column

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gate_excluded", sa.String(length=320), nullable=True))
    op.execute("UPDATE task SET gate_excluded = submitted_by WHERE gate_id IS NOT NULL AND gate_four_eyes")


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("gate_excluded")
