"""budgets: a task's, a team's per month; why a cost gate opened; a streaming step's text

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.add_column(sa.Column("monthly_budget_usd", sa.Float(), nullable=True))
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(sa.Column("budget_usd", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("gate_reason", sa.Text(), nullable=True))
    op.create_index("ix_modelcall_at", "modelcall", ["at"])
    with op.batch_alter_table("step", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partial_output", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("step", schema=None) as batch_op:
        batch_op.drop_column("partial_output")
    op.drop_index("ix_modelcall_at", table_name="modelcall")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("gate_reason")
        batch_op.drop_column("budget_usd")
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.drop_column("monthly_budget_usd")
