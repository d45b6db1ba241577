"""the first answer to a decision sent with an Idempotency-Key, kept to answer its retries

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

import exosuit.storage.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisionanswer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submitted_by", sa.String(length=320), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", exosuit.storage.db.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("submitted_by", "task_id", "key", name="uq_decision_answer"),
    )


def downgrade() -> None:
    op.drop_table("decisionanswer")
