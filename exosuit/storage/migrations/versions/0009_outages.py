"""outages waited out: a task's waiting reason, a team's model wait and revision cap

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

import exosuit.storage.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task") as task:
        task.add_column(sa.Column("waiting_reason", sa.Text(), nullable=True))
        task.add_column(sa.Column("waiting_since", exosuit.storage.db.UTCDateTime(), nullable=True))
    with op.batch_alter_table("team") as team:
        team.add_column(sa.Column("model_wait_hours", sa.Float(), nullable=False, server_default="24"))
        team.add_column(sa.Column("max_revisions", sa.Integer(), nullable=False, server_default="20"))


def downgrade() -> None:
    with op.batch_alter_table("team") as team:
        team.drop_column("max_revisions")
        team.drop_column("model_wait_hours")
    with op.batch_alter_table("task") as task:
        task.drop_column("waiting_since")
        task.drop_column("waiting_reason")
