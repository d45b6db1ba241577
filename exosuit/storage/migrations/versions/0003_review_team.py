"""review team: gate claims and decision links

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

- Who holds a task's open gate and until when (a lease): two nullable columns on the task
  row, beside the other inline gate columns, cleared whenever a gate opens or closes.
- `decision_link`: one row per link a notification carried (the token only as its hash), for
  one person and one gate, spent by its first use.
"""

import sqlalchemy as sa
from alembic import op

from exosuit.storage.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("task", sa.Column("gate_claimed_by", sa.String(length=320), nullable=True))
    op.add_column("task", sa.Column("gate_claim_expires_at", UTCDateTime(), nullable=True))
    op.create_table(
        "decision_link",
        sa.Column("token_hash", sa.String(length=64), primary_key=True),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), nullable=False),
        sa.Column("gate_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_decision_link_task_id", "decision_link", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_decision_link_task_id", "decision_link")
    op.drop_table("decision_link")
    op.drop_column("task", "gate_claim_expires_at")
    op.drop_column("task", "gate_claimed_by")
