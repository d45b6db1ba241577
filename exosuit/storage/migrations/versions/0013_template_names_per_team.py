"""template names per team: a template is keyed by (name, team), schedules point at both

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Names were unique across all teams, so creating one told a team another team's names and
let it take a name first. The tables are rebuilt (SQLite cannot change a primary key in
place): new ones made, rows copied, old ones dropped, new ones renamed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _tables(template_key: list[str], suffix: str) -> None:
    op.create_table(
        f"tasktemplate{suffix}",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("autonomy", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint(*template_key),
    )
    schedule_key = (
        sa.ForeignKeyConstraint(
            ["template", "team"], [f"tasktemplate{suffix}.name", f"tasktemplate{suffix}.team"]
        )
        if len(template_key) == 2
        else sa.ForeignKeyConstraint(["template"], [f"tasktemplate{suffix}.name"])
    )
    op.create_table(
        f"taskschedule{suffix}",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        schedule_key,
    )


def _rebuild(template_key: list[str]) -> None:
    _tables(template_key, "_new")
    columns = "name, team, title, instructions, autonomy, params, created_by, created_at"
    op.execute(f"INSERT INTO tasktemplate_new ({columns}) SELECT {columns} FROM tasktemplate")
    columns = "id, template, team, params, cron, created_by, created_at"
    op.execute(f"INSERT INTO taskschedule_new ({columns}) SELECT {columns} FROM taskschedule")
    op.drop_table("taskschedule")
    op.drop_table("tasktemplate")
    op.rename_table("tasktemplate_new", "tasktemplate")
    op.rename_table("taskschedule_new", "taskschedule")
    op.create_index("ix_tasktemplate_team", "tasktemplate", ["team"])
    op.create_index("ix_taskschedule_team", "taskschedule", ["team"])


def upgrade() -> None:
    _rebuild(["name", "team"])


def downgrade() -> None:
    _rebuild(["name"])  # fails if two teams now share a name: rename one first
