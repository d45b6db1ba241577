"""which provider answered each model call and step

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("modelcall", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("provider", sa.String(length=100), nullable=False, server_default="default")
        )
    with op.batch_alter_table("step", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("step", schema=None) as batch_op:
        batch_op.drop_column("provider")
    with op.batch_alter_table("modelcall", schema=None) as batch_op:
        batch_op.drop_column("provider")
