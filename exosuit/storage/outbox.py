"""The transactional outbox: webhook messages and notifications, written by the event writer
in the same transaction as the task event they report, so nothing is sent that did not
happen and nothing that happened goes unsent. Workflows drain it (workflows/outbox.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlmodel import Session, col, select

from exosuit.domain.audit import Anchor, format_at
from exosuit.domain.autonomy import Role
from exosuit.domain.contracts import TaskEvent
from exosuit.domain.webhooks import Notice, notice_for, webhook_event
from exosuit.storage.db import utcnow
from exosuit.storage.tables import (
    Membership,
    Notification,
    NotifyTarget,
    Step,
    Task,
    User,
    WebhookDelivery,
    WebhookSubscription,
)

_DECIDERS = (Role.APPROVER.value, Role.ADMIN.value)


def message_id(subscription_id: str, task_id: str, seq: int) -> str:
    """The `webhook-id`: derived from what it reports, so a replayed event writes the same one."""
    return "msg_" + hashlib.sha256(f"{subscription_id}:{task_id}:{seq}".encode()).hexdigest()[:26]


def gate_document(task: Task) -> dict[str, Any] | None:
    """The task's open gate as the API shows it (JSON-ready)."""
    if task.gate_id is None:
        return None
    return {
        "id": task.gate_id,
        "kind": task.gate_kind,
        "step_id": task.gate_step_id,
        "opened_at": _iso(task.gate_opened_at),
        "deadline": _iso(task.gate_deadline),
        "four_eyes": task.gate_four_eyes,
        "escalated": task.gate_escalated,
        "reason": task.gate_reason,
    }


def task_document(task: Task, steps: list[Step]) -> dict[str, Any]:
    """The task as the API shows it (CONTRACT.md's task), at this event."""
    return {
        "id": task.id,
        "title": task.title,
        "instructions": task.instructions,
        "team": task.team,
        "submitted_by": task.submitted_by,
        "autonomy": task.autonomy,
        "status": task.status,
        "steps": [
            {
                "id": s.id,
                "index": s.index,
                "title": s.title,
                "instructions": s.instructions,
                "kind": s.kind,
                "tool": s.tool,
                "risk": s.risk,
                "status": s.status,
                "output": s.output,
            }
            for s in sorted(steps, key=lambda s: s.index)
        ],
        "open_gate": gate_document(task),
        "result": task.result,
        "error": task.error,
        "usage": {
            "prompt_tokens": task.prompt_tokens,
            "completion_tokens": task.completion_tokens,
            "cost_usd": task.cost_usd,
        },
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
    }


def enqueue(
    session: Session, task: Task, ev: TaskEvent, head: Anchor, closed_gate: dict[str, Any] | None
) -> bool:
    """The event's webhook messages and notifications, in the caller's transaction; whether
    there were any."""
    added = False
    event = webhook_event(ev.action)
    if event is not None:
        found = session.exec(
            select(WebhookSubscription).where(
                WebhookSubscription.team == task.team, col(WebhookSubscription.deleted_at).is_(None)
            )
        )
        subscribers = [s for s in found if event.value in s.events]
        if subscribers:
            steps = list(session.exec(select(Step).where(Step.task_id == task.id)))
            gate = gate_document(task) if ev.open_gate is not None else closed_gate
            data: dict[str, Any] = {"task": task_document(task, steps), "gate": gate}
            if "action" in ev.data and gate is not None:  # a decision: what was decided, by whom
                data["decision"] = {"action": ev.data["action"], "actor": ev.actor} | (
                    {"reason": ev.data["reason"]} if ev.data.get("reason") else {}
                )
            body = json.dumps(
                {"type": event.value, "timestamp": format_at(utcnow()), "data": data},
                separators=(",", ":"),
                ensure_ascii=False,
            )
            for sub in subscribers:
                session.add(
                    WebhookDelivery(
                        id=message_id(sub.id, task.id, head.seq),
                        subscription_id=sub.id,
                        task_id=task.id,
                        seq=head.seq,
                        event=event.value,
                        body=body,
                    )
                )
                added = True
    notice = notice_for(ev.action)
    if notice is not None:
        added = _notify(session, task, notice, head.seq, ev) or added
    return added


def _notify(session: Session, task: Task, notice: Notice, seq: int, ev: TaskEvent) -> bool:
    has_targets = session.exec(select(NotifyTarget.id).where(NotifyTarget.team == task.team).limit(1)).first()
    if has_targets is None:
        return False
    deciders = session.exec(
        select(User.email)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(
            Membership.team == task.team,
            col(Membership.role).in_(_DECIDERS),
            col(User.disabled_at).is_(None),
        )
    )
    # Never for a gate the recipient cannot decide: four-eyes leaves the submitter out.
    excluded = task.gate_excluded if notice is not Notice.TASK_FAILED else None
    text = _text(task, notice, ev)
    added = False
    for email in sorted(set(deciders)):
        if email == excluded:
            continue
        added = True
        session.add(
            Notification(
                team=task.team,
                task_id=task.id,
                seq=seq,
                kind=notice.value,
                recipient=email,
                text=text,
                link=f"/tasks/{task.id}",
            )
        )
    return added


def _text(task: Task, notice: Notice, ev: TaskEvent) -> str:
    if notice is Notice.TASK_FAILED:
        return f"Task “{task.title}” ({task.team}) failed: {ev.error or 'see the task'}"
    kind = task.gate_kind or "a"
    if notice is Notice.GATE_ESCALATED:
        return f"Escalated: the {kind} gate of “{task.title}” ({task.team}) has waited past its deadline"
    return f"The {kind} gate of “{task.title}” ({task.team}) waits for your decision"


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
