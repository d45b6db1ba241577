"""gate claims

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Who holds a task's open gate and until when (a lease): two nullable columns on the task row,
beside the other inline gate columns, cleared whenever a gate opens or closes.
"""

import sqlalchemy as sa
from alembic import op

from exosuit.storage.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("task", sa.Column("gate_claimed_by", sa.String(length=320), nullable=True))
    op.add_column("task", sa.Column("gate_claim_expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("task", "gate_claim_expires_at")
    op.drop_column("task", "gate_claimed_by")
