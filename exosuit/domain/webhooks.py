"""Webhooks and notifications as policy: which events go out, how a delivery is signed, and
which destinations a delivery may reach. Pure: the activities do the sending.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from enum import StrEnum

from exosuit.domain.task import EventAction, TaskStatus

SECRET_PREFIX = "whsec_"


class WebhookEvent(StrEnum):
    """What a subscription may ask for: the moments of a task's life a webhook message reports."""

    TASK_CREATED = "task.created"
    GATE_OPENED = "gate.opened"
    GATE_DECIDED = "gate.decided"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"
    TASK_REJECTED = "task.rejected"
    TASK_CANCELLED = "task.cancelled"


_FROM_AUDIT = {
    EventAction.TASK_SUBMITTED: WebhookEvent.TASK_CREATED,
    EventAction.GATE_OPENED: WebhookEvent.GATE_OPENED,
    EventAction.GATE_DECIDED: WebhookEvent.GATE_DECIDED,
} | {EventAction.ended(s): WebhookEvent(f"task.{s.value}") for s in TaskStatus if not s.active}


def webhook_event(action: EventAction) -> WebhookEvent | None:
    """The webhook event an audit event is, if any."""
    return _FROM_AUDIT.get(action)


class Notice(StrEnum):
    """What a team's approvers (or, for a suggestion, its admins) are told about."""

    GATE_OPENED = "gate.opened"
    GATE_ESCALATED = "gate.escalated"
    TASK_FAILED = "task.failed"
    AUTONOMY_SUGGESTED = "autonomy.suggested"  # a proposal to move a template's level


_NOTICES = {
    EventAction.GATE_OPENED: Notice.GATE_OPENED,
    EventAction.GATE_ESCALATED: Notice.GATE_ESCALATED,
    EventAction.TASK_FAILED: Notice.TASK_FAILED,
}


def notice_for(action: EventAction) -> Notice | None:
    return _NOTICES.get(action)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # retried for the whole window, then given up
    CANCELLED = "cancelled"  # its subscription was deleted first


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header: v1,base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def retry_delay(attempt: int, initial: float, maximum: float, coefficient: float = 2.0) -> float:
    """Seconds before try `attempt + 1`, as Temporal's retry policy spaces them."""
    return float(min(initial * coefficient ** max(attempt - 1, 0), maximum))
