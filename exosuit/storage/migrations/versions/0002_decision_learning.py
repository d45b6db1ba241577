"""decision learning: a fact row per gate, usage per team and day, autonomy suggestions, admin events

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

The event writer fills `decisionfact`, its daily roll-ups `decisionday` (verdict counts) and
`decisiontime` (a log-scale histogram of times to decision), `incidentfact` (failed and
unknown tool calls) and `usageday` in the transaction of the audit event
they summarise, so the dashboard reads slim indexed rows instead of the chain. Tasks learn
the template they were run from and who planned them; a notification may be about no task (an
autonomy suggestion, told to the team's admins). Existing history is not back-filled:
the figures start with this revision.
"""

import sqlalchemy as sa
from alembic import op

import exosuit.storage.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_when = exosuit.storage.db.UTCDateTime
_TIME_BUCKETS = 96  # the histogram's buckets (exosuit/domain/time_histogram.py), fixed here


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("template", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("planned_by", sa.String(length=10), nullable=True))
    op.create_index("ix_task_team_created_planner", "task", ["team", "created_at", "planned_by"])
    with op.batch_alter_table("notification") as batch:  # a notice may be about no task
        batch.alter_column("task_id", existing_type=sa.String(length=40), nullable=True)
    op.create_table(
        "decisionfact",
        sa.Column("gate_id", sa.String(length=40), primary_key=True),
        sa.Column("task_id", sa.String(length=40), nullable=False, index=True),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("step_id", sa.String(length=40), nullable=True),
        sa.Column("step_kind", sa.String(length=10), nullable=True),
        sa.Column("tool", sa.String(length=100), nullable=True),
        sa.Column("risk", sa.String(length=10), nullable=True),
        sa.Column("autonomy", sa.String(length=20), nullable=False),
        sa.Column("opened_at", _when(), nullable=False),
        sa.Column("decided_at", _when(), nullable=True),
        sa.Column("decided_day", sa.String(length=10), nullable=True),
        sa.Column("action", sa.String(length=10), nullable=True),
        sa.Column("on_reject", sa.String(length=10), nullable=True),
        sa.Column("decided_by", sa.String(length=400), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("edit_chars", sa.Integer(), nullable=True),
        sa.Column("proposed", sa.Text(), nullable=True),
        sa.Column("final", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_decisionfact_team_decided",
        "decisionfact",
        [
            "team",
            "decided_at",
            "action",
            "on_reject",
            "kind",
            "seconds",
            "decided_day",
            "step_kind",
            "tool",
            "template",
        ],
    )
    op.create_index(
        "ix_decisionfact_team_template_decided", "decisionfact", ["team", "template", "decided_at"]
    )
    op.create_table(
        "decisionday",
        sa.Column("team", sa.String(length=100), primary_key=True),
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("dimension", sa.String(length=10), primary_key=True),
        sa.Column("value", sa.String(length=100), primary_key=True),
        *(
            sa.Column(verdict, sa.Integer(), nullable=False, server_default="0")
            for verdict in ("approve", "edit", "revise", "reject", "answer")
        ),
    )
    op.create_table(
        "decisiontime",
        sa.Column("team", sa.String(length=100), primary_key=True),
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("kind", sa.String(length=10), primary_key=True),
        *(
            sa.Column(f"b{i:02d}", sa.Integer(), nullable=False, server_default="0")
            for i in range(_TIME_BUCKETS)
        ),
    )
    op.create_table(
        "incidentfact",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task_id", sa.String(length=40), nullable=False, index=True),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=True),
        sa.Column("step_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", _when(), nullable=False),
    )
    op.create_index("ix_incidentfact_team_template_at", "incidentfact", ["team", "template", "at"])
    op.create_table(
        "usageday",
        sa.Column("team", sa.String(length=100), primary_key=True),
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
    )
    op.create_table(
        "autonomysuggestion",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("from_level", sa.String(length=20), nullable=False),
        sa.Column("to_level", sa.String(length=20), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("decided_by", sa.String(length=320), nullable=True),
        sa.Column("decided_at", _when(), nullable=True),
    )
    op.create_index("ix_autonomysuggestion_team_status", "autonomysuggestion", ["team", "status"])
    op.create_table(
        "adminevent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False, unique=True),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("adminevent")
    op.drop_index("ix_autonomysuggestion_team_status", table_name="autonomysuggestion")
    op.drop_table("autonomysuggestion")
    op.drop_table("usageday")
    op.drop_table("decisiontime")
    op.drop_index("ix_incidentfact_team_template_at", table_name="incidentfact")
    op.drop_table("incidentfact")
    op.drop_table("decisionday")
    op.drop_index("ix_decisionfact_team_template_decided", table_name="decisionfact")
    op.drop_index("ix_decisionfact_team_decided", table_name="decisionfact")
    op.drop_table("decisionfact")
    op.drop_index("ix_task_team_created_planner", table_name="task")
    op.execute("DELETE FROM notification WHERE task_id IS NULL")
    with op.batch_alter_table("notification") as batch:
        batch.alter_column("task_id", existing_type=sa.String(length=40), nullable=False)
    with op.batch_alter_table("task") as batch:
        batch.drop_column("planned_by")
        batch.drop_column("template")
