"""tool steps: a step's arguments and its tool's description, the exactly-once ledger

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

import exosuit.storage.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("step") as step:
        step.add_column(sa.Column("args", sa.JSON(), nullable=True))
        step.add_column(sa.Column("tool_info", sa.JSON(), nullable=True))
    op.create_table(
        "toolexecution",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False, unique=True),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), nullable=False),
        sa.Column("step_id", sa.String(length=40), nullable=False),
        sa.Column("tool", sa.String(length=200), nullable=False),
        sa.Column("args_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("started_at", exosuit.storage.db.UTCDateTime(), nullable=False),
        sa.Column("finished_at", exosuit.storage.db.UTCDateTime(), nullable=True),
    )
    op.create_index("ix_toolexecution_task_id", "toolexecution", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_toolexecution_task_id", table_name="toolexecution")
    op.drop_table("toolexecution")
    with op.batch_alter_table("step") as step:
        step.drop_column("tool_info")
        step.drop_column("args")
