"""open-gate index: a partial index that serves the queue and /approvals in their order

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

It holds only rows with an open gate (`gate_id IS NOT NULL`), led by team and then the lists'
order (gate_opened_at, id), so a page is one short ordered scan per team. The filter columns
follow, so kind, risk and four-eyes are checked, and the queue counted, in the index alone.
It replaces the full index on gate_opened_at, which also held every closed task's NULL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

OPEN_GATE = sa.text("gate_id IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_task_team_open_gates",
        "task",
        ["team", "gate_opened_at", "id", "gate_kind", "gate_risk", "gate_excluded", "gate_id"],
        sqlite_where=OPEN_GATE,
        postgresql_where=OPEN_GATE,
    )
    op.drop_index("ix_task_gate_opened", table_name="task")


def downgrade() -> None:
    op.create_index("ix_task_gate_opened", "task", ["gate_opened_at"])
    op.drop_index("ix_task_team_open_gates", table_name="task")
