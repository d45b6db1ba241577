"""signed checkpoints of every task's audit head

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

import exosuit.storage.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditcheckpoint",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", exosuit.storage.db.UTCDateTime(), nullable=False),
        sa.Column("heads", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auditcheckpoint")
