"""durations in seconds: a team's model wait is kept in seconds, as its gate deadline is

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("team") as team:
        team.add_column(sa.Column("model_wait_seconds", sa.Float(), nullable=False, server_default="86400"))
    op.execute("UPDATE team SET model_wait_seconds = model_wait_hours * 3600")
    with op.batch_alter_table("team") as team:
        team.drop_column("model_wait_hours")


def downgrade() -> None:
    with op.batch_alter_table("team") as team:
        team.add_column(sa.Column("model_wait_hours", sa.Float(), nullable=False, server_default="24"))
    op.execute("UPDATE team SET model_wait_hours = model_wait_seconds / 3600")
    with op.batch_alter_table("team") as team:
        team.drop_column("model_wait_seconds")
