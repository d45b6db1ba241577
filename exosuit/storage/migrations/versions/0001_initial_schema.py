"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04

The whole schema in one step: the migrations that grew it (twelve, then the dashboard's
facts and the review team's claims and links) were folded into this one before any
deployment; from the first release on, every change is a migration of its own. Two indexes
carry a reason beyond their name:
- `ix_task_team_open_gates` holds only tasks with an open gate (`gate_id IS NOT NULL`), led
  by team and then the review lists' order (gate_opened_at, id), so a page of the queue or
  of /approvals is one short ordered scan per team; the filter columns follow, so kind,
  risk and four-eyes are checked, and the queue counted, in the index alone.
- `ix_webhook_delivery_queue` serves the outbox: the next deliveries of a subscription and
  task, in order.
"""

import sqlalchemy as sa
from alembic import op

from exosuit.storage.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

OPEN_GATE = sa.text("gate_id IS NOT NULL")


def upgrade() -> None:
    _people()
    _tasks()
    _audit()
    _automations()
    _learning()
    _review_team()


def _people() -> None:
    op.create_table(
        "team",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("max_autonomy", sa.String(length=20), nullable=False),
        sa.Column("gate_deadline_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("monthly_budget_usd", sa.Float(), nullable=True),
        sa.Column("max_active_tasks", sa.Integer(), nullable=False, server_default="100"),
        sa.Column("submissions_per_minute", sa.Integer(), nullable=False, server_default="30"),
        sa.Column("model_wait_seconds", sa.Float(), nullable=False, server_default="86400"),
        sa.Column("max_revisions", sa.Integer(), nullable=False, server_default="20"),
        sa.Column("quorum_high", sa.Integer(), nullable=False, server_default="1"),
    )
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.Column("auth_version", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_user_email", "user", ["email"], unique=True)
    op.create_table(
        "apitoken",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_apitoken_user_id", "apitoken", ["user_id"])
    op.create_table(
        "membership",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), primary_key=True),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), primary_key=True),
        sa.Column("role", sa.String(length=20), nullable=False),
    )
    op.create_table(
        "websession",
        sa.Column("id_hash", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_websession_user_id", "websession", ["user_id"])


def _tasks() -> None:
    op.create_table(
        "task",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False),
        sa.Column("submitted_by", sa.String(length=320), nullable=False),
        sa.Column("autonomy", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("gate_id", sa.String(length=40), nullable=True),
        sa.Column("gate_kind", sa.String(length=10), nullable=True),
        sa.Column("gate_step_id", sa.String(length=40), nullable=True),
        sa.Column("gate_opened_at", UTCDateTime(), nullable=True),
        sa.Column("gate_deadline", UTCDateTime(), nullable=True),
        sa.Column("gate_four_eyes", sa.Boolean(), nullable=False),
        sa.Column("gate_escalated", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("gate_risk", sa.String(length=10), nullable=True),
        sa.Column("budget_usd", sa.Float(), nullable=True),
        sa.Column("gate_reason", sa.Text(), nullable=True),
        sa.Column("gate_question", sa.Text(), nullable=True),
        sa.Column("gate_choices", sa.JSON(), nullable=True),
        sa.Column("gate_excluded", sa.String(length=320), nullable=True),
        sa.Column("waiting_reason", sa.Text(), nullable=True),
        sa.Column("waiting_since", UTCDateTime(), nullable=True),
        sa.Column("gate_approvals", sa.JSON(), nullable=True),
        sa.Column("gate_approvals_needed", sa.Integer(), nullable=False, server_default="1"),
        sa.UniqueConstraint("submitted_by", "idempotency_key", name="uq_task_idempotency"),
    )
    op.create_index("ix_task_team_created", "task", ["team", "created_at"])
    op.create_index(
        "ix_task_team_open_gates",
        "task",
        ["team", "gate_opened_at", "id", "gate_kind", "gate_risk", "gate_excluded", "gate_id"],
        sqlite_where=OPEN_GATE,
        postgresql_where=OPEN_GATE,
    )
    op.create_table(
        "step",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("tool", sa.String(length=100), nullable=True),
        sa.Column("risk", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("partial_output", sa.Text(), nullable=True),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("tool_info", sa.JSON(), nullable=True),
    )
    op.create_index("ix_step_task_index", "step", ["task_id", "index"])
    op.create_table(
        "modelcall",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False, unique=True),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), nullable=False),
        sa.Column("step_id", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False, server_default="default"),
    )
    op.create_index("ix_modelcall_task_id", "modelcall", ["task_id"])
    op.create_index("ix_modelcall_at", "modelcall", ["at"])
    op.create_table(
        "toolexecution",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(length=200), nullable=False, unique=True),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), nullable=False),
        sa.Column("step_id", sa.String(length=40), nullable=False),
        sa.Column("tool", sa.String(length=200), nullable=False),
        sa.Column("args_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_toolexecution_task_id", "toolexecution", ["task_id"])
    op.create_table(
        "decisionanswer",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("submitted_by", sa.String(length=320), nullable=False),
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("submitted_by", "task_id", "key", name="uq_decision_answer"),
    )


def _audit() -> None:
    op.create_table(
        "auditevent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=400), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("idem_key", sa.String(length=200), nullable=False),
        sa.UniqueConstraint("task_id", "idem_key", name="uq_audit_key"),
        sa.UniqueConstraint("task_id", "seq", name="uq_audit_seq"),
    )
    op.create_table(
        "auditanchor",
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "auditcheckpoint",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("heads", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
    )


def _automations() -> None:
    op.create_table(
        "webhooksubscription",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_webhooksubscription_team", "webhooksubscription", ["team"])
    op.create_table(
        "webhookdelivery",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column(
            "subscription_id", sa.String(length=40), sa.ForeignKey("webhooksubscription.id"), nullable=False
        ),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("resent_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("subscription_id", "task_id", "seq", name="uq_webhook_delivery"),
    )
    op.create_index(
        "ix_webhook_delivery_queue", "webhookdelivery", ["subscription_id", "task_id", "status", "seq"]
    )
    op.create_index("ix_webhook_delivery_task_seq", "webhookdelivery", ["task_id", "seq"])
    op.create_table(
        "notifytarget",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
    )
    op.create_index("ix_notifytarget_team", "notifytarget", ["team"])
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("task_id", sa.String(length=40), sa.ForeignKey("task.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=400), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("task_id", "seq", "recipient", name="uq_notification"),
    )
    op.create_index("ix_notification_pending", "notification", ["team", "sent_at"])
    op.create_table(
        "tasktemplate",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("autonomy", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", "team"),  # names are a team's own
    )
    op.create_index("ix_tasktemplate_team", "tasktemplate", ["team"])
    op.create_table(
        "taskschedule",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["template", "team"], ["tasktemplate.name", "tasktemplate.team"]),
    )
    op.create_index("ix_taskschedule_team", "taskschedule", ["team"])


# In creation order: a table after those its foreign keys name.
TABLES = (
    *("team", "user", "apitoken", "membership", "websession"),
    *("task", "step", "modelcall", "toolexecution", "decisionanswer"),
    *("auditevent", "auditanchor", "auditcheckpoint"),
    *("webhooksubscription", "webhookdelivery", "notifytarget", "notification"),
    *("tasktemplate", "taskschedule"),
)


def downgrade() -> None:
    _drop_review_team()
    _drop_learning()
    for table in reversed(TABLES):
        op.drop_table(table)  # its indexes go with it


_when = UTCDateTime
_TIME_BUCKETS = 96  # the histogram's buckets (exosuit/domain/time_histogram.py), fixed here


def _learning() -> None:
    """What the dashboard and earned autonomy read: a fact row per gate, daily roll-ups, incidents,
    usage per team and day, autonomy suggestions and the admin events' chain."""
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
        "decisionmonth",
        sa.Column("team", sa.String(length=100), primary_key=True),
        sa.Column("month", sa.String(length=7), primary_key=True),
        sa.Column("dimension", sa.String(length=10), primary_key=True),
        sa.Column("value", sa.String(length=100), primary_key=True),
        *(
            sa.Column(verdict, sa.Integer(), nullable=False, server_default="0")
            for verdict in ("approve", "edit", "revise", "reject", "answer")
        ),
    )
    for name, period, width in (("decisiontime", "day", 10), ("decisiontimemonth", "month", 7)):
        op.create_table(
            name,
            sa.Column("team", sa.String(length=100), primary_key=True),
            sa.Column(period, sa.String(length=width), primary_key=True),
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
        "planday",
        sa.Column("team", sa.String(length=100), primary_key=True),
        sa.Column("day", sa.String(length=10), primary_key=True),
        sa.Column("planner", sa.String(length=10), primary_key=True),
        sa.Column("tasks", sa.Integer(), nullable=False, server_default="0"),
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


def _review_team() -> None:
    """Who holds a task's open gate and until when; one row per decision link (its hash)."""
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


def _drop_learning() -> None:
    op.drop_table("adminevent")
    op.drop_index("ix_autonomysuggestion_team_status", table_name="autonomysuggestion")
    op.drop_table("autonomysuggestion")
    op.drop_table("planday")
    op.drop_table("usageday")
    op.drop_table("decisiontimemonth")
    op.drop_table("decisiontime")
    op.drop_table("decisionmonth")
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


def _drop_review_team() -> None:
    op.drop_index("ix_decision_link_task_id", "decision_link")
    op.drop_table("decision_link")
    op.drop_column("task", "gate_claim_expires_at")
    op.drop_column("task", "gate_claimed_by")
