"""automations: webhook subscriptions and their outbox, notifications, templates, schedules

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

import exosuit.storage.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_when = exosuit.storage.db.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "webhooksubscription",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False, index=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("deleted_at", _when(), nullable=True),
    )
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
        sa.Column("last_attempt_at", _when(), nullable=True),
        sa.Column("next_attempt_at", _when(), nullable=True),
        sa.Column("delivered_at", _when(), nullable=True),
        sa.Column("resent_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.UniqueConstraint("subscription_id", "task_id", "seq", name="uq_webhook_delivery"),
    )
    op.create_index(
        "ix_webhook_delivery_queue", "webhookdelivery", ["subscription_id", "task_id", "status", "seq"]
    )
    op.create_index("ix_webhook_delivery_task_seq", "webhookdelivery", ["task_id", "seq"])
    op.create_table(
        "notifytarget",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False, index=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
    )
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
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("sent_at", _when(), nullable=True),
        sa.UniqueConstraint("task_id", "seq", "recipient", name="uq_notification"),
    )
    op.create_index("ix_notification_pending", "notification", ["team", "sent_at"])
    op.create_table(
        "tasktemplate",
        sa.Column("name", sa.String(length=100), primary_key=True),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False, index=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("autonomy", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
    )
    op.create_table(
        "taskschedule",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("template", sa.String(length=100), sa.ForeignKey("tasktemplate.name"), nullable=False),
        sa.Column("team", sa.String(length=100), sa.ForeignKey("team.name"), nullable=False, index=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("taskschedule")
    op.drop_table("tasktemplate")
    op.drop_index("ix_notification_pending", "notification")
    op.drop_table("notification")
    op.drop_table("notifytarget")
    op.drop_index("ix_webhook_delivery_task_seq", "webhookdelivery")
    op.drop_index("ix_webhook_delivery_queue", "webhookdelivery")
    op.drop_table("webhookdelivery")
    op.drop_table("webhooksubscription")
