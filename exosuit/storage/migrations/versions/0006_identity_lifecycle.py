"""identity lifecycle (disabled users, expiring and revocable tokens), team limits, signed audit anchors

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

import exosuit.storage.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditanchor",
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("at", exosuit.storage.db.UTCDateTime(), nullable=False),
    )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled_at", exosuit.storage.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", exosuit.storage.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", exosuit.storage.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_active_tasks", sa.Integer(), nullable=False, server_default="100"))
        batch_op.add_column(
            sa.Column("submissions_per_minute", sa.Integer(), nullable=False, server_default="30")
        )


def downgrade() -> None:
    op.drop_table("auditanchor")
    with op.batch_alter_table("team", schema=None) as batch_op:
        batch_op.drop_column("submissions_per_minute")
        batch_op.drop_column("max_active_tasks")
    with op.batch_alter_table("apitoken", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")
