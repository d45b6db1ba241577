"""The transactional outbox: webhook messages and notifications, written by the event writer
in the same transaction as the task event they report, so nothing is sent that did not
happen and nothing that happened goes unsent. Workflows drain it (workflows/outbox.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from exosuit.domain.audit import Anchor, format_at
from exosuit.domain.autonomy import GateKind, Role
from exosuit.domain.contracts import TaskEvent
from exosuit.domain.webhooks import Notice, notice_for, webhook_event
from exosuit.storage.db import utcnow
from exosuit.storage.tables import (
    Membership,
    Notification,
    NotifyTarget,
    Step,
    User,
    WebhookDelivery,
    WebhookSubscription,
    table_of,
)

# Core on the tables: the event writer's hot path runs these reads on most events.
_SUBSCRIPTION = table_of(WebhookSubscription)
_DELIVERY = table_of(WebhookDelivery)
_TARGET = table_of(NotifyTarget)
_NOTIFICATION = table_of(Notification)
_USER = table_of(User)
_MEMBERSHIP = table_of(Membership)
_STEP = table_of(Step)
_STEP_FIELDS = ("id", "index", "title", "instructions", "kind", "tool", "risk", "status", "output")
_SUBSCRIPTIONS = select(_SUBSCRIPTION.c.id, _SUBSCRIPTION.c.events).where(
    _SUBSCRIPTION.c.team == bindparam("team"), _SUBSCRIPTION.c.deleted_at.is_(None)
)
_HAS_TARGET = select(_TARGET.c.id).where(_TARGET.c.team == bindparam("team")).limit(1)

_DECIDERS = (Role.APPROVER.value, Role.ADMIN.value)


def message_id(subscription_id: str, task_id: str, seq: int) -> str:
    """The `webhook-id`: derived from what it reports, so a replayed event writes the same one."""
    return "msg_" + hashlib.sha256(f"{subscription_id}:{task_id}:{seq}".encode()).hexdigest()[:26]


def gate_document(task: Mapping[str, Any]) -> dict[str, Any] | None:
    """The task's open gate as the API shows it (JSON-ready), from the task's columns."""
    if task["gate_id"] is None:
        return None
    return {
        "id": task["gate_id"],
        "kind": task["gate_kind"],
        "step_id": task["gate_step_id"],
        "opened_at": _iso(task["gate_opened_at"]),
        "deadline": _iso(task["gate_deadline"]),
        "four_eyes": task["gate_four_eyes"],
        "escalated": task["gate_escalated"],
        "reason": task["gate_reason"],
        "approvals": task["gate_approvals"] or [],
        "approvals_needed": task["gate_approvals_needed"],
        "question": task["gate_question"],
        "choices": task["gate_choices"],
    }


def task_document(task: Mapping[str, Any], steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The task as the API shows it (docs/api.md), at this event, from its columns."""
    return {
        "id": task["id"],
        "title": task["title"],
        "instructions": task["instructions"],
        "team": task["team"],
        "submitted_by": task["submitted_by"],
        "autonomy": task["autonomy"],
        "status": task["status"],
        "steps": [{name: s[name] for name in _STEP_FIELDS} for s in sorted(steps, key=lambda s: s["index"])],
        "open_gate": gate_document(task),
        "result": task["result"],
        "error": task["error"],
        "usage": {
            "prompt_tokens": task["prompt_tokens"],
            "completion_tokens": task["completion_tokens"],
            "cost_usd": task["cost_usd"],
        },
        "created_at": _iso(task["created_at"]),
        "updated_at": _iso(task["updated_at"]),
    }


def enqueue(
    conn: Connection,
    task: Mapping[str, Any],
    ev: TaskEvent,
    head: Anchor,
    closed_gate: dict[str, Any] | None,
) -> bool:
    """The event's webhook messages and notifications, in the caller's transaction; whether
    there were any. `task` is the task's columns as the event left them."""
    added = False
    event = webhook_event(ev.action)
    if event is not None:
        found = conn.execute(_SUBSCRIPTIONS, {"team": task["team"]})
        subscribers = [s.id for s in found if event.value in s.events]
        if subscribers:
            steps = [
                row._asdict() for row in conn.execute(select(_STEP).where(_STEP.c.task_id == task["id"]))
            ]
            gate = gate_document(task) if ev.open_gate is not None else closed_gate
            data: dict[str, Any] = {"task": task_document(task, steps), "gate": gate}
            if "action" in ev.data and gate is not None:  # a decision: what was decided, by whom
                data["decision"] = (
                    {"action": ev.data["action"], "actor": ev.actor}
                    | ({"reason": ev.data["reason"]} if ev.data.get("reason") else {})
                    | ({"answer": ev.data["answer"]} if "answer" in ev.data else {})
                )
            body = json.dumps(
                {"type": event.value, "timestamp": format_at(utcnow()), "data": data},
                separators=(",", ":"),
                ensure_ascii=False,
            )
            deliveries = [
                {
                    "id": message_id(sub_id, task["id"], head.seq),
                    "subscription_id": sub_id,
                    "task_id": task["id"],
                    "seq": head.seq,
                    "event": event.value,
                    "body": body,
                }
                for sub_id in subscribers
            ]
            conn.execute(insert(_DELIVERY), deliveries)
            added = True
    notice = notice_for(ev.action)
    if notice is not None:
        added = _notify(conn, task, notice, head.seq, ev) or added
    return added


def _notify(conn: Connection, task: Mapping[str, Any], notice: Notice, seq: int, ev: TaskEvent) -> bool:
    team = task["team"]
    if conn.execute(_HAS_TARGET, {"team": team}).first() is None:
        return False
    member = _MEMBERSHIP.c
    # A question is for every member of the team to answer; other gates for its approvers.
    question = task["gate_kind"] == GateKind.QUESTION and notice is not Notice.TASK_FAILED
    roles = tuple(r.value for r in Role) if question else _DECIDERS
    deciders = conn.execute(
        select(_USER.c.email)
        .join(_MEMBERSHIP, member.user_id == _USER.c.id)
        .where(member.team == team, member.role.in_(roles), _USER.c.disabled_at.is_(None))
    ).scalars()
    # Never for a gate the recipient cannot decide: four-eyes leaves the submitter out.
    excluded = task["gate_excluded"] if notice is not Notice.TASK_FAILED else None
    text = _text(task, notice, ev)
    notifications = [
        {
            "team": team,
            "task_id": task["id"],
            "seq": seq,
            "kind": notice.value,
            "recipient": email,
            "text": text,
            "link": f"/tasks/{task['id']}",
        }
        for email in sorted(set(deciders))
        if email != excluded
    ]
    if notifications:
        conn.execute(insert(_NOTIFICATION), notifications)
    return bool(notifications)


def notify_admins(conn: Connection, team: str, notice: Notice, text: str, link: str) -> bool:
    """A notice about no task (an autonomy suggestion) for the team's admins, in the caller's
    transaction, if the team has somewhere to send it; whether any was queued."""
    if conn.execute(_HAS_TARGET, {"team": team}).first() is None:
        return False
    member = _MEMBERSHIP.c
    admins = conn.execute(
        select(_USER.c.email)
        .join(_MEMBERSHIP, member.user_id == _USER.c.id)
        .where(member.team == team, member.role == Role.ADMIN.value, _USER.c.disabled_at.is_(None))
    ).scalars()
    rows = [
        {
            "team": team,
            "task_id": None,
            "seq": 0,
            "kind": notice.value,
            "recipient": email,
            "text": text,
            "link": link,
        }
        for email in sorted(set(admins))
    ]
    if rows:
        conn.execute(insert(_NOTIFICATION), rows)
    return bool(rows)


def _text(task: Mapping[str, Any], notice: Notice, ev: TaskEvent) -> str:
    title, team = task["title"], task["team"]
    if notice is Notice.TASK_FAILED:
        return f"Task “{title}” ({team}) failed: {ev.error or 'see the task'}"
    kind = task["gate_kind"] or "a"
    if kind == GateKind.QUESTION and notice is not Notice.GATE_ESCALATED:
        return f"“{title}” ({team}) asks: {task['gate_question']}"
    if notice is Notice.GATE_ESCALATED:
        return f"Escalated: the {kind} gate of “{title}” ({team}) has waited past its deadline"
    return f"The {kind} gate of “{title}” ({team}) waits for your decision"


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
